"""The runner in-process: one clean pass per pair, plugins through the registry, flags stored."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from harness import runner
from harness.config import parse_suite
from harness.models.base import Model
from harness.registry import models
from harness.store import Store


class Counting(nn.Module):
    """A linear Fashion-MNIST model that counts its forward calls and can emit NaN for some rows."""

    calls = 0

    def __init__(self, nan_rows: int = 0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(784, 10)
        self.nan_rows = nan_rows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        Counting.calls += 1
        out = self.fc(x.flatten(1))
        if self.nan_rows:
            out[: self.nan_rows, 0] = float("nan")
        return out


class CountingSource:
    def catalog(self):
        return []

    def check(self, arg, task):
        pass

    def load(self, arg, task, checkpoint=None, **options):
        return Model(f"counting:{arg}", Counting(nan_rows=int(arg or 0)), "image", config={"nan": arg})


@pytest.fixture(scope="module", autouse=True)
def counting_source():
    models.register("counting", "test model that counts forward calls")(CountingSource)
    yield
    models._entries.pop("counting")


def suite(model: str, limit: int = 1000, metrics: str = "[accuracy, calibration]"):
    text = f"name: t\nlimit: {limit}\nbatch_size: 100\nresamples: 50\ngroups:\n"
    text += f"  - models: ['{model}']\n    tasks: [fashion-mnist]\n    metrics: {metrics}\n"
    return parse_suite(text, "t.yaml")


def test_clean_pass_runs_once_for_all_metrics(tmp_path):
    Counting.calls = 0
    with Store(tmp_path) as store:
        result = runner.run(suite("counting:0"), store)
    assert Counting.calls == 10  # 1,000 examples in batches of 100, shared by accuracy and calibration
    assert result.measured == 2 and not result.failures
    assert {r.metric for r in result.records} >= {"accuracy.top1", "calibration.ece"}


def test_cached_jobs_do_not_run_the_model(tmp_path):
    with Store(tmp_path) as store:
        runner.run(suite("counting:0"), store)
        Counting.calls = 0
        again = runner.run(suite("counting:0"), store)
    assert Counting.calls == 0 and again.cached == 2 and again.measured == 0


def test_nonfinite_logits_are_stored_flagged(tmp_path):
    with Store(tmp_path) as store:
        result = runner.run(suite("counting:5", limit=200), store)
        stored = store.records()
    assert stored and all("nonfinite-logits=10" in r.flags for r in stored)  # 5 rows in each of 2 batches
    top1 = next(r for r in result.records if r.metric == "accuracy.top1" and r.slice == "overall")
    assert math.isfinite(top1.value) and not top1.ok


def test_a_failing_metric_does_not_stop_the_others(tmp_path, monkeypatch):
    from harness.metrics.calibration import Calibration

    def broken(self, ctx, params):
        raise RuntimeError("boom")

    monkeypatch.setattr(Calibration, "compute", broken)
    with Store(tmp_path) as store:
        result = runner.run(suite("counting:0", limit=100), store)
        assert store.count("jobs") == 1
    assert [f.job.metric for f in result.failures] == ["calibration"] and "boom" in result.failures[0].error
    assert result.measured == 1


def test_changed_parameters_are_a_new_measurement(tmp_path):
    with Store(tmp_path) as store:
        runner.run(suite("counting:0", limit=100, metrics="[{calibration: {bins: 15}}]"), store)
        plan = runner.plan(suite("counting:0", limit=100, metrics="[{calibration: {bins: 10}}]"), store)
        assert not plan.stored
        plan = runner.plan(suite("counting:0", limit=100, metrics="[calibration]"), store)  # same as bins: 15
        assert len(plan.stored) == 1


def test_long_metrics_report_their_stages_and_figures_are_stored(tmp_path, monkeypatch):
    from harness.progress import Reporter

    class Recording(Reporter):
        def __init__(self) -> None:
            self.stages: list[tuple[str, int, int]] = []

        def stage(self, label: str, done: int, total: int) -> None:
            self.stages.append((label, done, total))

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    metrics = "[{corruption: {corruptions: [contrast, fog], severities: [1, 3], baseline: 'counting:'}}]"
    reporter = Recording()
    with Store(tmp_path / "store") as store:
        result = runner.run(suite("counting:", limit=50, metrics=metrics), store, reporter=reporter)
        assert not result.failures
        assert reporter.stages == [(f"batch 1: {cell}", k, 4) for k, cell in
                                   enumerate(["contrast@1", "contrast@3", "fog@1", "fog@3"])]  # fmt: skip
        (figure,) = store.figures(model="counting:")
        assert figure["name"] == "corruptions@3" and figure["path"].read_bytes().startswith(b"\x89PNG")


def test_every_run_stores_what_it_cost_to_make(tmp_path):
    """Wall time always; codecarbon's energy and carbon for a run that measured something (labelled
    estimated on a machine without energy counters); a run served from the store says why it has none."""
    with Store(tmp_path) as store:
        first = runner.run(suite("counting:0", limit=200), store)
        warm = runner.run(suite("counting:0", limit=200), store)
        runs = {row["run_id"]: row for row in store.runs()}
    cost = runs[first.run_id]["cost"]
    assert cost == first.cost and cost["seconds"] > 0
    energy = cost["energy"]
    assert energy["kwh"] > 0 and energy["kg_co2"] > 0 and energy["country"] == "USA"
    assert energy["method"] in ("measured", "estimated") and energy["seconds"] <= cost["seconds"]
    assert energy["kwh"] == pytest.approx(energy["cpu_kwh"] + energy["gpu_kwh"] + energy["ram_kwh"], rel=1e-6)
    assert runs[warm.run_id]["cost"]["energy"] is None
    assert runs[warm.run_id]["cost"]["energy_missing"] == "no job was measured"


def test_a_store_from_before_run_costs_is_migrated(tmp_path):
    import sqlite3

    with sqlite3.connect(tmp_path / "results.sqlite") as db:
        db.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, started REAL NOT NULL, finished REAL, suite TEXT, "
                   "argv TEXT, harness_version TEXT, status TEXT NOT NULL DEFAULT 'running')")  # fmt: skip
        db.execute("INSERT INTO runs VALUES ('old', 1.0, 2.0, 'quick', '[]', '0.0.1', 'complete')")
    with Store(tmp_path) as store:
        result = runner.run(suite("counting:0", limit=100), store)
        runs = {row["run_id"]: row for row in store.runs()}
    assert runs["old"]["cost"] is None and runs[result.run_id]["cost"]["seconds"] > 0


class OrderedStore(Store):
    """A store that logs the order of writes."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.writes: list[str] = []

    def save_examples(self, key, frame, **kwargs) -> None:
        self.writes.append(f"examples:{kwargs['kind']}")
        super().save_examples(key, frame, **kwargs)

    def save_job(self, job, records, seconds) -> None:
        self.writes.append(f"job:{job.metric}")
        super().save_job(job, records, seconds)


def test_clean_outputs_are_stored_before_the_first_job_that_made_them(tmp_path):
    """A run killed right after a job was stored must not leave the pair's per-example outputs unstored:
    the resumed run skips the pair, and compare and cards need them."""
    with OrderedStore(tmp_path / "store") as store:
        runner.run(suite("counting:", metrics="[accuracy, calibration]"), store)
        assert store.writes == ["examples:clean", "job:accuracy", "job:calibration"]


def test_a_pairs_model_is_released_when_its_jobs_are_done(tmp_path, monkeypatch):
    """Device memory does not grow across a suite: when a pair's jobs are done its model is let go
    (counted here as live modules at the start of each pair, and after the run)."""
    import gc
    import weakref

    from harness.progress import Reporter

    loaded: list[weakref.ref] = []
    real = CountingSource.load

    def load(self, arg, task, checkpoint=None, **options):
        model = real(self, arg, task, checkpoint, **options)
        loaded.append(weakref.ref(model.module))
        return model

    monkeypatch.setattr(CountingSource, "load", load)
    alive: list[int] = []

    class Watch(Reporter):
        def pair_started(self, model: str, task: str) -> None:
            gc.collect()
            alive.append(sum(ref() is not None for ref in loaded))

    text = "name: t\nlimit: 200\nbatch_size: 100\nresamples: 50\ngroups:\n  - models: ['counting:0', 'counting:1', "
    text += "'counting:2']\n    tasks: [fashion-mnist]\n    metrics: [accuracy]\n"
    with Store(tmp_path) as store:
        result = runner.run(parse_suite(text, "t.yaml"), store, reporter=Watch())
    assert result.measured == 3
    gc.collect()
    assert alive == [3, 2, 1]  # the three are loaded while planning (for their fingerprints); each goes with its pair
    assert all(ref() is None for ref in loaded), "a model outlived its pair"


@pytest.mark.parametrize(("limit", "examples"), [(500, 500), (10000, 10000), (20000, 10000), (None, 1000)])
def test_a_limit_makes_the_costly_metrics_take_every_example_of_the_subset_even_the_whole_split(tmp_path, limit,
                                                                                               examples):  # fmt: skip
    """``--limit N`` means N examples everywhere, as the README says: --limit 10000 on Fashion-MNIST's
    10,000 corrupts all of them, not the default 1,000 that a run without --limit corrupts."""
    text = ("name: t\ngroups:\n  - models: [zoo:fmnist-linear]\n    tasks: [fashion-mnist]\n    metrics: [corruption]\n"
            + (f"limit: {limit}\n" if limit else ""))  # fmt: skip
    with Store(tmp_path) as store:
        (job,) = runner.plan(parse_suite(text, "t.yaml"), store).jobs
    assert job.params["examples"] == examples
