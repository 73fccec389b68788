"""Flat tables of what the store holds: records (one number each), per-example outputs, or runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import HarnessError
from harness.files import atomic_write
from harness.measures import metric_of
from harness.selection import Choice, SelectionError, selected
from harness.store import Store
from harness.text import csv_frame


class ExportError(HarnessError):
    """Nothing matches the filters, or the output cannot be written."""


def records_frame(
    store: Store,
    models: list[str] | None,
    tasks: list[str] | None,
    metrics: list[str] | None,
    choice: Choice | None = None,
) -> pd.DataFrame:
    """One row per record, its provenance (the job's) in ``provenance_*`` columns; with a ``choice``,
    only the records of the chosen evaluation of each figure family."""
    if choice is None:
        records = store.records(models=models, tasks=tasks, metrics=metrics)
    else:
        wanted = None if metrics is None else set(metrics)
        records = [r for r in selected(store, choice, models=models, tasks=tasks)
                   if wanted is None or (metric_of(r.metric) or r.metric.split(".", 1)[0]) in wanted]  # fmt: skip
    rows = []
    for record in records:
        row = record.to_dict()
        row["params"] = json.dumps(row["params"], sort_keys=True)
        row["flags"] = ";".join(row["flags"])
        provenance = row.pop("provenance")
        rows.append({**row, **{f"provenance_{k}": v for k, v in provenance.items()}})
    return pd.DataFrame(rows)


def jobs_frame(store: Store, models: list[str] | None, tasks: list[str] | None) -> pd.DataFrame:
    """One row per stored job: its key, what it measured, when, and its spec (flattened into ``spec_*``
    columns, and whole as JSON in ``spec``); a job stored before specs existed says ``legacy``."""
    rows = []
    for job in store.jobs(models=models, tasks=tasks):
        row = {"key": job.key, "model": job.model, "task": job.task, "metric": job.metric, "run_id": job.run_id,
               "seconds": job.seconds, "finished": iso_time(job.finished), "legacy": job.spec is None,
               "spec": job.spec.to_json() if job.spec else None,
               "examples": job.spec.examples.count if job.spec else None,
               "description": job.spec.describe() if job.spec else "legacy job: stored before job specs"}  # fmt: skip
        if job.spec is not None:
            row.update(pd.json_normalize(job.spec.to_dict(), sep="_").add_prefix("spec_").iloc[0].to_dict())
        rows.append(row)
    return pd.DataFrame(rows)


def runs_frame(store: Store, suite: str | None) -> pd.DataFrame:
    """One row per run: when, what, its status and what it cost (wall time, energy, carbon)."""
    rows = []
    for run in store.runs():
        if suite and run["suite"] != suite:
            continue
        cost = run.pop("cost") or {}
        energy = cost.get("energy") or {}
        rows.append({
            **run, "started": iso_time(run["started"]), "finished": iso_time(run["finished"]),
            "argv": " ".join(run["argv"]), "seconds": cost.get("seconds"),
            "failures": "; ".join(f"{f['model']} on {f['task']}, {f['metric']}: {f['error']}" for f in run["failures"]),
            "energy_wh": energy["kwh"] * 1000 if energy else None,
            "carbon_g": energy["kg_co2"] * 1000 if energy else None,
            "energy_method": energy.get("method"), "country": energy.get("country"),
            "energy_missing": cost.get("energy_missing"),
        })  # fmt: skip
    return pd.DataFrame(rows)


def suite_scope(name: str) -> list[tuple[str, str, list[str]]]:
    """(model, task, metrics) of each pair a suite runs, whatever subset or seed it was run with."""
    from harness.config import load_suite

    return [pair for group in load_suite(name).groups for pair in suite_scope_of(group)]


def suite_scope_of(group: Any) -> list[tuple[str, str, list[str]]]:
    """(model, task, metrics) of each pair one group of a suite runs."""
    from harness.models import check_model
    from harness.models.base import IncompatibleError
    from harness.tasks import get_task

    scope = []
    for task_ref in group.tasks:
        task = get_task(task_ref.name, **task_ref.options)
        for ref in group.models:
            try:
                check_model(ref.name, task, **ref.options)
            except IncompatibleError:
                continue
            scope.append((ref.name, task.name, [m.name for m in group.metrics]))
    return scope


def suite_params(name: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(model, task, metric) -> every parameter the suite gives that metric there, defaults filled in,
    as a job spec stores them (None where the run resolves it)."""
    from harness.config import load_suite
    from harness.registry import metrics

    out = {}
    for group in load_suite(name).groups:
        given = {ref.name: metrics.get(ref.name).Params(**ref.params).model_dump(mode="json") for ref in group.metrics}
        for model, task, names in suite_scope_of(group):
            out.update({(model, task, metric): given[metric] for metric in names})
    return out


def iso_time(epoch: float | None) -> str | None:
    """A stored time (seconds since the epoch) as ISO 8601 in UTC, to the second."""
    from datetime import UTC, datetime

    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def export_table(
    root: Path,
    what: str,
    output: Path,
    fmt: str,
    *,
    suite: str | None = None,
    models: list[str] | None = None,
    tasks: list[str] | None = None,
    choice: Choice | None = None,
) -> int:
    """Write the matching records, per-example outputs, jobs or runs to ``output``; returns the number of
    rows. Records are those of the ``choice`` (None: every stored evaluation)."""
    if not (root / "results.sqlite").is_file():
        raise ExportError(f"no result store at {root}: run `harness run` first, or pass --store")
    if what == "runs":
        with Store(root, readonly=True) as store:
            return _write(runs_frame(store, suite), output, fmt, f"the store at {root} holds no runs")
    if what == "jobs" and not suite:
        with Store(root, readonly=True) as store:
            return _write(jobs_frame(store, models, tasks), output, fmt, f"the store at {root} holds no jobs")
    scope = suite_scope(suite) if suite else [(None, None, None)]
    scope = [
        (m, t, metrics)
        for m, t, metrics in scope
        if (models is None or m is None or m in models) and (tasks is None or t is None or t in tasks)
    ]
    frames = []
    with Store(root, readonly=True) as store:
        for model, task, metrics in scope:
            m = [model] if model else models
            t = [task] if task else tasks
            if what == "records":
                try:
                    frames.append(records_frame(store, m, t, metrics, choice))
                except SelectionError as exc:
                    raise ExportError(str(exc)) from None
            elif what == "jobs":
                jobs = jobs_frame(store, m, t)
                frames.append(jobs if metrics is None or jobs.empty else jobs[jobs["metric"].isin(metrics)])
            else:
                frames.append(store.examples(models=m, tasks=t))
    frames = [f for f in frames if not f.empty]
    empty = f"the store at {root} holds no {what} for suite {suite}, models {models}, tasks {tasks}"
    return _write(pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(), output, fmt, empty)


def flat(frame: pd.DataFrame) -> pd.DataFrame:
    """Nested values (dicts, lists: a model's options, a spec's parameters) as JSON text, so that every
    column is a scalar column that CSV and Parquet can hold (Parquet cannot hold an empty struct)."""
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object and frame[column].map(lambda v: isinstance(v, dict | list | tuple)).any():
            frame[column] = frame[column].map(
                lambda v: json.dumps(v, sort_keys=True, default=str) if isinstance(v, dict | list | tuple) else v
            )
    return frame


def _write(frame: pd.DataFrame, output: Path, fmt: str, empty: str) -> int:
    if frame.empty:
        raise ExportError(empty)
    frame = flat(frame)
    try:
        with atomic_write(output) as tmp:
            if fmt == "csv":
                csv_frame(frame).to_csv(tmp, index=False)
            elif fmt == "parquet":
                frame.to_parquet(tmp, index=False)
            else:  # one compact object per row, without the columns it has no value in (other kinds' columns)
                rows = json.loads(frame.to_json(orient="records"))
                tmp.write_text(json.dumps([{k: v for k, v in row.items() if v is not None} for row in rows]))
    except OSError as exc:
        raise ExportError(f"cannot write {output}: {exc}") from None
    return len(frame)
