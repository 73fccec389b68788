"""Whatever goes wrong, no measured result is lost or corrupted: killed runs, two runs on one store,
a full disk, models that raise, return the wrong shape or NaN."""

from __future__ import annotations

import errno
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest
from test_cli import counts, harness

from harness.executors import ExecutorError, RayExecutor
from harness.store import JobRow, Store, StoreError

BAD_MODELS = """
import torch
from torch import nn


class Raises(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(784, 10)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return self.layer(x.flatten(1))


class WrongShape(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(784, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.flatten(1))


class SometimesNaN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer(x.flatten(1))
        return torch.where(x.flatten(1)[:, 400:401] > 0.5, torch.nan, out)
"""


def test_models_that_raise_or_return_the_wrong_shape_fail_their_jobs_and_the_suite_goes_on(tmp_path):
    (tmp_path / "bad_models.py").write_text(BAD_MODELS)
    models = ["zoo:fmnist-linear", "torch:bad_models:Raises", "torch:bad_models:WrongShape",
              "torch:bad_models:SometimesNaN"]  # fmt: skip
    args = [a for m in models for a in ("--model", m)]
    proc = harness("run", *args, "--task", "fashion-mnist", "--metric", "accuracy", "--limit", "1000",
                   "--batch-size", "256", store=tmp_path / "store", check=False,
                   env={"PYTHONPATH": str(tmp_path)})  # fmt: skip
    text = " ".join(proc.stderr.split())
    assert proc.returncode == 1, proc.stderr  # something failed, and the run says so
    assert (
        "torch:bad_models:Raises raised on fashion-mnist, batch 2 (examples 512-767): RuntimeError: CUDA error" in text
    )
    assert (
        "torch:bad_models:WrongShape returned (256, 7) on fashion-mnist, batch 0; expected logits of shape (256, 10)"
        in text
    )
    assert text.count("RuntimeError: CUDA error") == 1  # each failure printed once
    # the model that answers NaN where it can is no better than always predicting one class: said so
    assert "warning: torch:bad_models:SometimesNaN on fashion-mnist: at-chance: top-1 accuracy" in text
    assert "warning: zoo:fmnist-linear" not in text
    with closing(sqlite3.connect(tmp_path / "store" / "results.sqlite")) as db:
        rows = db.execute("SELECT model, flags FROM records WHERE metric = 'accuracy.top1' AND slice = 'overall'")
        stored = dict(rows.fetchall())
    assert set(stored) == {"zoo:fmnist-linear", "torch:bad_models:SometimesNaN"}
    assert "nonfinite-logits=" in stored["torch:bad_models:SometimesNaN"]  # counted wrong and flagged
    runs = harness("export", "--what", "runs", "-o", str(tmp_path / "runs.csv"), store=tmp_path / "store")
    assert runs.returncode == 0
    failed = pd.read_csv(tmp_path / "runs.csv")
    assert failed["status"].tolist() == ["failed"]  # and the store remembers which jobs failed, and why
    assert "torch:bad_models:WrongShape on fashion-mnist, accuracy: ModelRunError" in failed["failures"][0]


def run_until(store: Path, jobs: int, args: list[str], delay: float = 0.0) -> None:
    """Start ``harness run``, SIGKILL it ``delay`` seconds after the store holds ``jobs`` jobs."""
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", *args, "--store", str(store)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            with closing(sqlite3.connect(store / "results.sqlite", timeout=1)) as db:
                if db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] >= jobs:
                    break
        except sqlite3.OperationalError:
            pass
        time.sleep(0.02)
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_killed_again_and_again_then_resumed_holds_every_record_once(tmp_path):
    """SIGKILL at random moments (after 2, 7 and 13 jobs, then a random wait that lands inside a job, a
    write or between them), resuming each time. ``HARNESS_KILL_SEED`` replays a failing draw."""
    seed = int(os.environ.get("HARNESS_KILL_SEED", random.SystemRandom().randrange(2**32)))
    draw = random.Random(seed)
    store = tmp_path / "store"
    args = ["--suite", "quick", "--limit", "2000", "--quiet"]
    for jobs in (2, 7, 13):
        run_until(store, jobs, args, delay=draw.uniform(0, 1.5))
    harness("run", *args, store=store)
    clean = tmp_path / "clean"
    harness("run", *args, store=clean)
    jobs, records, distinct = counts(store)
    assert (jobs, records, distinct) == counts(clean) and records == distinct, f"HARNESS_KILL_SEED={seed}"
    with Store(store) as resumed, Store(clean) as uninterrupted:
        figures = [[(r.model, r.task, r.metric, r.slice, r.value, r.ci_low, r.ci_high) for r in s.records()]
                   for s in (resumed, uninterrupted)]  # fmt: skip
        assert figures[0] == figures[1], f"HARNESS_KILL_SEED={seed}"  # the same values, CIs included
        accuracy = {
            (r.model, r.task): r.value for r in resumed.records() if (r.metric, r.slice) == ("accuracy.top1", "overall")
        }
        outputs = resumed.examples(kind="clean")
    # each model's per-example outputs are there and agree with its records
    assert outputs.groupby(["model", "task"])["correct"].mean().to_dict() == pytest.approx(accuracy)
    with closing(sqlite3.connect(store / "results.sqlite")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM jobs WHERE key NOT IN (SELECT job_key FROM records)").fetchone()[0] == 0
        examples = db.execute("SELECT path, rows FROM examples").fetchall()
    for path, rows in examples:  # each file is whole
        assert len(pd.read_parquet(store / path)) == rows
    assert not list(store.rglob("*.tmp*")), f"HARNESS_KILL_SEED={seed}"  # no half-written file left behind


@pytest.mark.slow
def test_two_runs_on_one_store_at_once_lose_and_duplicate_nothing(tmp_path):
    store = tmp_path / "store"  # both create it: the schema is made by whichever comes first
    runs = [["--suite", "quick", "--limit", "2000"], ["--suite", "fairness", "--limit", "2000"]]  # overlap: Adult
    command = [sys.executable, "-m", "harness", "run", "--quiet", "--store", str(store)]
    procs = [subprocess.Popen([*command, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for args in runs]  # fmt: skip
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert not any("locked" in e for e in errors), errors
    jobs, records, distinct = counts(store)
    assert records == distinct
    alone = tmp_path / "alone"
    for args in runs:
        harness("run", *args, "--quiet", store=alone)
    assert counts(alone) == (jobs, records, distinct)


def test_a_full_disk_stops_the_write_cleanly_and_keeps_what_is_stored(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from harness.records import Record

    record = Record(model="m", task="t", metric="accuracy.top1", value=0.5, ci_low=0.4, ci_high=0.6, n=10,
                    direction="higher", category="accuracy")  # fmt: skip
    with Store(tmp_path / "store") as store:
        store.save_job(JobRow("k1", "r", "m", "t", "accuracy", {}, "a", "b"), [record], 1.0)
        store.save_examples("e1", pd.DataFrame({"example": [0, 1]}), model="m", task="t", kind="clean",
                            fingerprints=("a", "b"), run_id="r")  # fmt: skip

        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(pq, "write_table", full)
        with pytest.raises(StoreError, match=r"No space left on device.*disk full or the folder read-only"):
            store.save_examples("e2", pd.DataFrame({"example": [0]}), model="m", task="t", kind="clean",
                                fingerprints=("a", "b"), run_id="r")  # fmt: skip

        class FullDatabase:
            def __init__(self, db: sqlite3.Connection) -> None:
                self.db = db

            def execute(self, sql: str, *args):
                if sql.startswith("INSERT"):
                    raise sqlite3.OperationalError("database or disk is full")
                return self.db.execute(sql, *args)

            def executemany(self, sql: str, *args):
                raise sqlite3.OperationalError("database or disk is full")

        real = store._db
        store._db = FullDatabase(real)
        with pytest.raises(StoreError, match="database or disk is full"):
            store.save_job(JobRow("k1", "r2", "m", "t", "accuracy", {}, "a", "b"), [record], 1.0)
        store._db = real
        assert [r.value for r in store.records()] == [0.5]  # the replaced job's rollback kept the old one
        assert store.count("examples") == 1 and len(store.examples_by_key("e1")) == 2
    assert not list((tmp_path / "store").rglob("*.tmp*"))


def test_ray_missing_is_a_clear_error(monkeypatch):

    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where ray is not installed
    with pytest.raises(ExecutorError, match=r"needs ray: pip install -e '\.\[ray\]'"):
        list(RayExecutor().map(lambda job: [job], [1]))


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs: a disk that fills up, and can be made read-only (needs mount rights; skips else)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root and mount rights); the simulated test covers it")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path, leave_kib: int) -> None:
    stat = os.statvfs(folder)
    free_kib = stat.f_bavail * stat.f_frsize // 1024
    (folder / "filler").write_bytes(b"\0" * max(0, free_kib - leave_kib) * 1024)


@pytest.mark.slow
def test_a_real_full_disk_and_a_read_only_store_fail_clearly_and_lose_nothing(small_disk):
    store = small_disk / "store"
    args = ["run", "--suite", "quick", "--limit", "500", "--quiet"]
    harness("run", "--model", "zoo:fmnist-linear", "--task", "fashion-mnist", "--metric", "accuracy", "--limit",
            "500", "--quiet", store=store)  # fmt: skip
    before = counts(store)
    fill(small_disk, leave_kib=150)
    full = harness(*args, store=store, check=False)
    message = " ".join(full.stderr.split())
    assert full.returncode == 2 and "is the disk full or the folder read-only? Nothing already stored" in message
    assert "Traceback" not in full.stderr
    with closing(sqlite3.connect(store / "results.sqlite")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert counts(store)[0] >= before[0]  # what was stored is still there (and what fitted was added)
    (small_disk / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    read_only = harness(*args, store=store, check=False)
    assert read_only.returncode == 2 and "read-only" in read_only.stderr, read_only.stderr
    assert harness("leaderboard", "--suite", "quick", store=store).returncode == 0  # reading still works
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    harness(*args, store=store)  # space again: the run resumes and completes
    assert counts(store)[0] == 20
