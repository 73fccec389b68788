"""The Ray executor on a local Ray instance: the same records as in-process, resume across executors,
a failing pair recorded while the others go on, results streamed as a job yields them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_cli import harness

pytest.importorskip("ray")

FIELDS = "model, task, metric, slice, value, ci_low, ci_high, n"


def records(store: Path) -> list[tuple]:
    with sqlite3.connect(store / "results.sqlite") as db:
        return sorted(db.execute(f"SELECT {FIELDS} FROM records").fetchall())


@pytest.mark.slow
def test_ray_gives_the_records_of_a_local_run_and_resumes_across_executors(tmp_path):
    args = ("run", "--suite", "quick", "--limit", "1000", "--quiet")
    harness(*args, store=tmp_path / "local")
    harness(*args, "--executor", "ray", store=tmp_path / "ray")
    local = records(tmp_path / "local")
    assert len(local) == 144 and records(tmp_path / "ray") == local  # same values, CIs and counts (ECE debiased: +10)
    # interrupted on Ray after accuracy, finished locally (and the other way round): nothing measured twice
    mixed = tmp_path / "mixed"
    harness(*args, "--executor", "ray", "--metric", "accuracy", store=mixed)
    finish = harness("run", "--suite", "quick", "--limit", "1000", store=mixed)
    assert "10 from the store, 10 measured" in " ".join(finish.stderr.split())
    assert records(mixed) == local
    back = tmp_path / "back"
    harness(*args, "--metric", "calibration", store=back)
    again = harness("run", "--suite", "quick", "--limit", "1000", "--executor", "ray", store=back)
    assert "10 from the store, 10 measured" in " ".join(again.stderr.split())
    assert records(back) == local


CRASHING = """
import os
import torch


class Crash(torch.nn.Module):
    \"\"\"Kills the process that runs it (a segfault, the OOM killer), on its first batch.\"\"\"

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        os._exit(3)
"""


@pytest.mark.slow
def test_a_worker_that_dies_fails_its_jobs_and_the_others_go_on(tmp_path):
    (tmp_path / "crashing.py").write_text(CRASHING)
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "name: s\nlimit: 500\nexecutor: ray\nretries: 1\ngroups:\n"
        "  - models: [zoo:fmnist-linear, 'torch:crashing:Crash']\n    tasks: [fashion-mnist]\n    metrics: [accuracy]\n"
    )
    proc = harness("run", "--config", str(suite), store=tmp_path / "store", check=False,
                   env={"PYTHONPATH": str(tmp_path)})  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "failed: torch:crashing:Crash on fashion-mnist, accuracy" in " ".join(proc.stderr.split())
    assert {r[0] for r in records(tmp_path / "store")} == {"zoo:fmnist-linear"}


@pytest.mark.slow
def test_ray_streams_each_result_to_the_driver_as_the_job_yields_it(tmp_path):
    """The driver sees a job's first result while the job still runs (so it commits finished jobs of a
    pair at once and a killed run loses only what is in flight); Ray itself retries nothing."""
    from harness.executors import Needs, RayExecutor

    def first_then_wait(flag: str):  # defined here, so that Ray sends it by value to its worker
        """A job that yields one result, then waits (up to a minute) for the driver to have received it."""
        import os
        import time

        yield "first"
        for _ in range(600):
            if os.path.exists(flag):
                yield "second"
                return
            time.sleep(0.1)
        yield "the driver got nothing before the job ended"

    flag = tmp_path / "received"
    executor = RayExecutor(num_cpus=1)
    ray = executor._ray()
    try:
        assert executor._options(ray, Needs())["max_retries"] == 0
        seen = []
        for item in executor.map(first_then_wait, [str(flag)]):
            seen.append(item)
            flag.touch()
    finally:
        ray.shutdown()
    assert seen == ["first", "second"]
