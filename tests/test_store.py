"""The store: round trips, atomic jobs, replacement without duplicates, per-example outputs."""

from __future__ import annotations

import math
import multiprocessing
import sqlite3
from dataclasses import replace

import pandas as pd
import pytest

from harness.records import Record
from harness.store import JobRow, Store, StoreError, key_of


def record(metric="accuracy.top1", slice="overall", value=0.9, **kw) -> Record:
    base = dict(
        model="m", task="t", metric=metric, value=value, ci_low=value - 0.01, ci_high=value + 0.01, n=100,
        direction="higher", category="accuracy", slice=slice, params={"a": 1}, flags=(), run_id="r",
        provenance={"torch": "x"},
    )  # fmt: skip
    return Record(**{**base, **kw})


def job(key="k1") -> JobRow:
    return JobRow(key, "r", "m", "t", "accuracy", {}, "mf", "tf")


def test_round_trip(tmp_path):
    with Store(tmp_path) as store:
        recs = [
            record(),
            record(slice="class=a", value=0.8, flags=("nonfinite-logits=2",)),
            record(value=float("nan"), metric="x"),
        ]
        store.save_job(job(), recs, 1.5)
        assert store.stored_keys(["k1", "k2"]) == {"k1"}
        back = store.records(keys=["k1"])
    assert len(back) == 3
    by = {(r.metric, r.slice): r for r in back}
    assert by["accuracy.top1", "class=a"].flags == ("nonfinite-logits=2",)
    assert by["accuracy.top1", "overall"] == replace(recs[0], job="k1")  # records belong to their job
    assert math.isnan(by["x", "overall"].value)


def test_saving_again_replaces_without_duplicates(tmp_path):
    with Store(tmp_path) as store:
        store.save_job(job(), [record(value=0.5)], 1)
        store.save_job(job(), [record(value=0.7)], 1)
        assert store.count("jobs") == 1 and store.count("records") == 1
        assert store.records()[0].value == 0.7


def test_a_failing_write_leaves_nothing_half_written(tmp_path):
    with Store(tmp_path) as store:
        store.save_job(job("k0"), [record()], 1)
        duplicate_slices = [record(), record()]  # violates UNIQUE (job, metric, slice) on the second row
        with pytest.raises(sqlite3.IntegrityError):
            store.save_job(job("k1"), duplicate_slices, 1)
        assert not store.stored_keys(["k1"])
        assert store.count("records") == 1 and store.count("jobs") == 1


def test_wal_mode_and_reopen(tmp_path):
    with Store(tmp_path) as store:
        store.save_job(job(), [record()], 1)
    with Store(tmp_path) as again:
        assert again._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert again.count("records") == 1


def test_examples_round_trip(tmp_path):
    frame = pd.DataFrame(
        {"example": [0, 1, 2], "label": [1, 0, 1], "prediction": [1, 1, 1], "correct": [True, False, True]}
    )
    with Store(tmp_path) as store:
        key = key_of(kind="clean", model="m")
        store.save_examples(key, frame, model="m", task="t", kind="clean", fingerprints=("a", "b"), run_id="r")
        back = store.examples(models=["m"])
        assert back[["example", "label", "prediction", "correct"]].equals(frame)
        assert set(back["model"]) == {"m"} and store.examples(models=["other"]).empty
        assert not list((tmp_path / "examples").glob("*.tmp*"))


def test_store_path_that_is_a_file(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(StoreError, match="not a directory"):
        Store(target)


def test_store_file_that_is_not_a_database(tmp_path):
    (tmp_path / "results.sqlite").write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(StoreError, match="expected a harness SQLite store"):
        Store(tmp_path)


def test_key_is_order_independent():
    assert key_of(a=1, b={"x": 1, "y": 2}) == key_of(b={"y": 2, "x": 1}, a=1)
    assert key_of(a=1) != key_of(a=2)


def test_figures_are_kept_once_per_content_and_found_by_model(tmp_path):
    with Store(tmp_path) as store:
        store.save_figure("job-a", "grid", b"png-1", model="m1", task="t", run_id="r")
        store.save_figure("job-b", "grid", b"png-1", model="m2", task="t", run_id="r")
        store.save_figure("job-a", "grid", b"png-2", model="m1", task="t", run_id="r2")  # measured again
        assert store.count("figures") == 2
        (m1,) = store.figures(model="m1")
        assert m1["path"].read_bytes() == b"png-2" and m1["run_id"] == "r2"
        assert store.figures(model="m2")[0]["path"].read_bytes() == b"png-1"
        assert len(list((tmp_path / "figures").glob("*.png"))) == 2
        assert store.figures(task="other") == []


def _open_and_close(path: str, results) -> None:
    try:
        Store(path).close()
        results.put("ok")
    except StoreError as exc:
        results.put(str(exc))


def test_runs_opening_one_new_store_at_once_all_succeed(tmp_path):
    """The first runs on a new store race to create it; SQLite answers the loser of the switch to WAL
    "database is locked" at once (this failed about 1 round in 20 before the store retried)."""
    context = multiprocessing.get_context("fork")
    for round in range(100):
        results = context.Queue()
        procs = [context.Process(target=_open_and_close, args=(str(tmp_path / f"s{round}"), results)) for _ in range(6)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        assert [results.get() for _ in procs] == ["ok"] * 6


def test_a_store_held_by_another_process_for_too_long_says_so(tmp_path, monkeypatch):
    Store(tmp_path / "store").close()
    monkeypatch.setattr("harness.store.LOCK_TIMEOUT", 0.3)
    holder = sqlite3.connect(tmp_path / "store" / "results.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another run in the middle of a long write
    try:
        with pytest.raises(StoreError, match=r"another process has held it for over 0.3 s\. Nothing already stored"):
            Store(tmp_path / "store")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert Store(tmp_path / "store").count("jobs") == 0  # and once it lets go, the store opens
