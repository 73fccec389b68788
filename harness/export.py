"""Flat tables of what the store holds: records (one number each) or per-example outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from harness.errors import HarnessError
from harness.store import Store


class ExportError(HarnessError):
    """Nothing matches the filters, or the output cannot be written."""


def records_frame(
    store: Store, keys: list[str] | None, models: list[str] | None, tasks: list[str] | None
) -> pd.DataFrame:
    rows = []
    for record in store.records(keys=keys, models=models, tasks=tasks):
        row = record.to_dict()
        row["params"] = json.dumps(row["params"], sort_keys=True)
        row["flags"] = ";".join(row["flags"])
        provenance = row.pop("provenance")
        rows.append({**row, **{f"provenance_{k}": v for k, v in provenance.items()}})
    return pd.DataFrame(rows)


def export_table(
    root: Path,
    what: str,
    output: Path,
    fmt: str,
    *,
    suite: str | None = None,
    models: list[str] | None = None,
    tasks: list[str] | None = None,
) -> int:
    if not (root / "results.sqlite").is_file():
        raise ExportError(f"no result store at {root}: run `harness run` first, or pass --store")
    with Store(root) as store:
        keys = example_keys = None
        if suite is not None:
            from harness import runner
            from harness.config import load_suite

            the_plan = runner.plan(load_suite(suite), store)
            keys = [job.key for job in the_plan.jobs]
            example_keys = [pair.examples_key for pair in the_plan.pairs]
        if what == "records":
            frame = records_frame(store, keys, models, tasks)
        else:
            frame = store.examples(keys=example_keys, models=models, tasks=tasks)
    if frame.empty:
        raise ExportError(
            f"the store at {root} holds no {what} matching the filters (suite {suite}, models {models}, tasks {tasks})"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp{os.getpid()}")
    if fmt == "csv":
        frame.to_csv(tmp, index=False)
    elif fmt == "parquet":
        frame.to_parquet(tmp, index=False)
    else:
        frame.to_json(tmp, orient="records", indent=1)
    tmp.replace(output)
    return len(frame)
