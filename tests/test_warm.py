"""A warm re-run answers from the store without importing torch (harness.warm), shows what the run
that measured it showed, and plans as usual the moment anything it depended on is missing."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from contextlib import closing

from test_cli import harness

from harness import warm
from harness.config import load_suite

WARM = ("import sys\nsys.argv = ['harness', *sys.argv[1:]]\nfrom harness.cli import main\ntry:\n    main()\n"
        "except SystemExit:\n    pass\nprint('torch imported:', 'torch' in sys.modules)\n"
        "print('pandas or codecarbon imported:', {'pandas', 'codecarbon'} & set(sys.modules) != set())\n")  # fmt: skip


def test_a_warm_run_prints_the_same_tables_without_torch_and_replans_when_a_job_is_missing(tmp_path):
    store = tmp_path / "store"
    args = ["run", "--suite", "quick", "--limit", "300", "--resamples", "100"]
    cold = harness(*args, store=store)
    again = subprocess.run([sys.executable, "-c", WARM, *args, "--store", str(store)], capture_output=True,
                           text=True, env={**os.environ, "COLUMNS": "160"}, timeout=300)  # fmt: skip
    assert "torch imported: False" in again.stdout, again.stderr
    assert "pandas or codecarbon imported: False" in again.stdout  # a third of a warm run, before
    shown = again.stdout.replace("torch imported: False\n", "").replace("pandas or codecarbon imported: False\n", "")
    assert shown == cold.stdout  # the same tables
    assert "20 from the store, 0 measured; planned from the store" in " ".join(again.stderr.split())
    with closing(sqlite3.connect(store / "results.sqlite")) as db, db:
        statuses = [row[0] for row in db.execute("SELECT status FROM runs ORDER BY started")]
        db.execute("DELETE FROM records WHERE job_key = (SELECT key FROM jobs LIMIT 1)")
        db.execute("DELETE FROM jobs WHERE key = (SELECT key FROM jobs LIMIT 1)")
    assert statuses == ["complete", "complete"]
    replanned = subprocess.run([sys.executable, "-c", WARM, *args, "--store", str(store)], capture_output=True,
                               text=True, timeout=300)  # fmt: skip
    assert "torch imported: True" in replanned.stdout and "19 from the store, 1 measured" in " ".join(
        replanned.stderr.split())  # fmt: skip


def test_only_runs_whose_inputs_live_in_the_package_are_planned_from_the_store():
    quick = load_suite("quick")
    assert warm.plan_key(quick.with_overrides(), None) is not None
    assert warm.plan_key(quick.with_overrides(limit=10), None) != warm.plan_key(quick.with_overrides(), None)
    assert warm.plan_key(quick.with_overrides(models=["timm:resnet18"]), None) is None  # a hub or user model
    assert warm.plan_key(quick.with_overrides(tasks=["imagefolder:/data/photos"]), None) is None  # user data
    assert warm.plan_key(quick.with_overrides(), "cuda") is None  # a device to check needs torch
