"""``harness verify``: a store checked against what made it, as ``git fsck`` checks a repository.

It reads, never writes (a read-only store can be verified), and reports:

- the database's own integrity (SQLite's ``integrity_check``), records without their job;
- every job whose spec no longer hashes to its key, whose records differ from the digest stored with
  them, or whose per-example files are missing or differ from their hashes (``Store.damaged``);
- every figure that can be recomputed from stored per-example outcomes and is not what they give (an
  accuracy from the clean pass's ``correct`` column, a robust accuracy from its attack's column);
- every per-example file and figure not matching its hash, files no row names;
- warm plans that a run would ignore (malformed, or not matching their digest);
- leftovers of dead processes: temporary files, runs still marked running.

Jobs and files stored before digests were kept cannot be checked against them; they are counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import integrity, slices, warm
from harness.store import Store, StoreError, outcome_files

TOLERANCE = 1e-9  # a recomputed proportion and its record agree to rounding


@dataclass(frozen=True)
class Finding:
    kind: str  # database, damaged job, recomputed, file, figure, plan, leftover
    where: str  # a job key, a file or a run id
    detail: str


@dataclass
class Report:
    root: Path
    findings: list[Finding] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)  # what was checked, by kind
    unverifiable: dict[str, int] = field(default_factory=dict)  # stored before their digests were kept

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, kind: str, where: str, detail: str) -> None:
        self.findings.append(Finding(kind, where, detail))

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": str(self.root),
            "ok": self.ok,
            "checked": self.checked,
            "unverifiable": self.unverifiable,
            "findings": [f.__dict__ for f in self.findings],
        }


def verify(root: Path) -> Report:
    """Check the store at ``root``; a database that cannot be opened is itself the finding."""
    report = Report(Path(root))
    if not (report.root / "results.sqlite").is_file():
        raise StoreError(f"no result store at {root}: nothing to verify (pass --store)")
    try:
        store = Store(root, readonly=True)
    except StoreError as exc:
        report.add("database", "results.sqlite", str(exc))
        return report
    with store:
        try:
            _database(store, report)
            _jobs(store, report)
            _files(store, report)
        except StoreError as exc:  # a page garbled past what the checks above could read
            report.add("database", "results.sqlite", str(exc))
        _plans(store, report)
        _leftovers(store, report)
    return report


def _database(store: Store, report: Report) -> None:
    problems = store.integrity_check()
    if problems != ["ok"]:
        for problem in problems[:20]:
            report.add("database", "results.sqlite", f"SQLite integrity check: {problem}")
    for key, count in store.orphan_records().items():
        report.add(
            "database",
            key,
            f"{count} records whose job row is gone (deleted by hand?); the next run of the job replaces them",
        )


def _jobs(store: Store, report: Report) -> None:
    rows = store.index("jobs")
    report.checked["jobs"] = len(rows)
    report.unverifiable["jobs without a digest"] = sum(1 for r in rows if not r["digest"])
    damaged = store.damaged()
    for row in rows:
        if row["key"] in damaged:
            report.add(
                "damaged job", row["key"], f"{row['model']} on {row['task']}, {row['metric']}: {damaged[row['key']]}"
            )
    _recompute(store, report, set(damaged))


def _recompute(store: Store, report: Report, damaged: set[str]) -> None:
    """Records whose value is a proportion of a stored per-example outcome column, recomputed from it."""
    from harness.measures import measure

    by_job, clean = outcome_files(sorted(store.index("examples"), key=lambda row: row["finished"]))
    jobs = {job.key: job for job in store.jobs()}
    frames: dict[str, Any] = {}
    checked = 0
    for record in store.records():
        declared, job = measure(record.metric), jobs.get(record.job)
        if declared is None or job is None or job.spec is None or record.job in damaged:
            continue
        found = declared.column(slices.parse(record.slice))
        if found is None:
            continue
        kind, column = found
        spec = job.spec
        if kind == "clean":
            row = clean.get((job.model, spec.model.fingerprint, spec.task.fingerprint, spec.examples.indices))
        else:
            row = next((r for r in reversed(by_job.get(job.key, [])) if r["kind"] == kind), None)
        if row is None:
            continue
        path = row["path"]
        if path not in frames:
            frames[path] = store.examples_by_key(row["key"])
        frame = frames[path]
        if frame is None or column not in frame or not _binary(frame[column]):
            continue
        values = frame[column].dropna().astype(float)
        checked += 1
        if len(values) == 0:
            continue
        if abs(float(values.mean()) - record.value) > TOLERANCE:
            report.add(
                "recomputed",
                record.job,
                f"{record.model} on {record.task}: {record.metric} "
                f"{slices.format(slices.parse(record.slice))} is {record.value:.6g} in the store, but its "
                f"per-example outcomes ({path}, column {column}) give {float(values.mean()):.6g}",
            )
    report.checked["figures recomputed from outcomes"] = checked


def _binary(series: Any) -> bool:
    values = series.dropna()
    return series.dtype == bool or (len(values) > 0 and values.isin((0, 1, True, False)).all())


def _files(store: Store, report: Report) -> None:
    rows = store.index("examples")
    report.checked["per-example files"] = len(rows)
    report.unverifiable["per-example files without a hash"] = sum(1 for r in rows if not r["sha256"])
    for row in rows:
        if (problem := store.file_problem(row)) is not None:
            report.add("file", row["path"], problem)
    named = {row["path"] for row in rows}
    figures = sorted({row["path"] for row in store.index("figures")})
    report.checked["figures"] = len(figures)
    for path in figures:
        if (problem := store.figure_problem(path)) is not None:
            report.add("figure", path, problem)
    named |= set(figures)
    for folder, suffix in (("examples", ".parquet"), ("figures", ".png")):
        for path in sorted((store.root / folder).glob(f"*{suffix}")):
            if str(path.relative_to(store.root)) not in named:
                report.add(
                    "leftover",
                    str(path.relative_to(store.root)),
                    "no row of the database names this "
                    "file (a run killed between writing and indexing it); the run that makes it replaces it",
                )


def _plans(store: Store, report: Report) -> None:
    plans = sorted((store.root / "plans").glob("*.json"))
    report.checked["warm plans"] = len(plans)
    older = 0
    for path in plans:
        try:
            held = json.loads(path.read_text())
        except (OSError, ValueError):
            held = None
        if isinstance(held, dict) and set(held) == {"pairs", "jobs"}:  # written before plans had digests
            older += 1
        elif not warm.well_formed(held) or held["key"] != path.stem:
            report.add(
                "plan",
                str(path.relative_to(store.root)),
                "malformed, or not matching its digest: runs ignore "
                "it and plan as usual (remove it, or let the next complete run replace it)",
            )
    report.unverifiable["warm plans without a digest (runs ignore them)"] = older


def _leftovers(store: Store, report: Report) -> None:
    for folder in ("examples", "figures", "plans"):
        for path in integrity.dead_temp_files(store.root / folder):
            report.add(
                "leftover",
                str(path.relative_to(store.root)),
                "a temporary file of a process that has ended; the next `harness run` on this store removes it",
            )
    for run_id in store.dead_runs():
        report.add(
            "leftover",
            run_id,
            "run marked running whose process has ended; the next `harness run` on this store marks it killed",
        )
