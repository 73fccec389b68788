"""The result store: SQLite (WAL) for jobs and records, Parquet for per-example outputs.

A job is one measurement; its key is the hash of its ``JobSpec`` (``harness/spec.py``: everything that
determines its figures, resolved), which is stored with the job's provenance on the job's row; jobs
stored before specs existed have none and read as legacy. A job and all its records are written in
one transaction, so a run killed at any moment leaves each job either wholly stored or absent, never
half; the next run skips what is stored (resume) and measures the rest. Measuring a stored job again
(``--no-cache``) replaces it in the same transaction, so records are never duplicated.

Per-example outputs are written to a temporary Parquet file, renamed into place, then indexed in
SQLite; a file without its index row (a kill between the two) is overwritten by the next run. The
runner stores a pair's outputs before the job that made them, so a stored job always has them.
Figures (PNG) a metric draws are stored the same way under ``figures/``, named by their content so
that the same picture drawn for several models is kept once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.files import atomic_write
from harness.records import Record
from harness.spec import JobSpec, digest, index_digest

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, started REAL NOT NULL, finished REAL, suite TEXT, argv TEXT,
    harness_version TEXT, status TEXT NOT NULL DEFAULT 'running', cost TEXT, failures TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY, run_id TEXT NOT NULL, model TEXT NOT NULL, task TEXT NOT NULL,
    metric TEXT NOT NULL, params TEXT NOT NULL, model_fingerprint TEXT NOT NULL,
    task_fingerprint TEXT NOT NULL, seconds REAL NOT NULL, finished REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_key TEXT NOT NULL REFERENCES jobs(key) ON DELETE CASCADE,
    model TEXT NOT NULL, task TEXT NOT NULL, metric TEXT NOT NULL, slice TEXT NOT NULL,
    value REAL, ci_low REAL, ci_high REAL, n INTEGER NOT NULL, direction TEXT NOT NULL,
    category TEXT NOT NULL, params TEXT NOT NULL, flags TEXT NOT NULL, run_id TEXT NOT NULL,
    provenance TEXT NOT NULL,
    UNIQUE (job_key, metric, slice)
);
CREATE INDEX IF NOT EXISTS records_model_task ON records (model, task);
CREATE TABLE IF NOT EXISTS examples (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, task TEXT NOT NULL, kind TEXT NOT NULL,
    model_fingerprint TEXT NOT NULL, task_fingerprint TEXT NOT NULL, path TEXT NOT NULL,
    rows INTEGER NOT NULL, run_id TEXT NOT NULL, finished REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS figures (
    key TEXT PRIMARY KEY, job_key TEXT NOT NULL, model TEXT NOT NULL, task TEXT NOT NULL, name TEXT NOT NULL,
    path TEXT NOT NULL, run_id TEXT NOT NULL, finished REAL NOT NULL
);
"""
RECORD_COLUMNS = (
    "model", "task", "metric", "slice", "value", "ci_low", "ci_high", "n", "direction", "category",
    "params", "flags", "run_id", "provenance", "interval",
)  # fmt: skip


JOB_COLUMNS = (
    "key", "run_id", "model", "task", "metric", "params", "model_fingerprint", "task_fingerprint", "seconds",
    "finished", "spec", "provenance",
)  # fmt: skip
EXAMPLE_COLUMNS = (
    "key", "model", "task", "kind", "model_fingerprint", "task_fingerprint", "path", "rows", "run_id", "finished",
    "job_key", "indices",
)  # fmt: skip


def key_of(**parts: Any) -> str:
    """A stable key from JSON-able parts (per-example outputs, figures)."""
    return digest(parts)


LOCK_TIMEOUT = 60.0  # seconds a run waits for another writing to the same store


def new_run_id() -> str:
    """A run's id: its UTC start to the second and six random hex digits (``20261203T061239-ca6b7f``)."""
    import uuid
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


class StoreError(HarnessError):
    """A store folder that cannot be used."""


def _unusable(doing: str, where: Path, exc: Exception) -> StoreError:
    """What went wrong with the disk or the lock under a store, and what to do about it."""
    if "locked" in str(exc):
        cause, action = f"another process has held it for over {LOCK_TIMEOUT:g} s.", "let it finish"
    else:
        cause, action = "is the disk full or the folder read-only?", "free space or pass --store"
    return StoreError(
        f"cannot {doing} the result store at {where} ({exc}): {cause} Nothing already stored was changed; "
        f"{action}, then run again to resume"
    )


def _writes(method: Callable[..., Any]) -> Callable[..., Any]:
    """A write that fails on the disk (full, read-only, gone) raises a ``StoreError`` that says so; the
    transaction was rolled back and files are only ever replaced whole, so nothing stored is damaged."""

    @functools.wraps(method)
    def write(self: Store, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.OperationalError, OSError) as exc:
            raise _unusable("write to", self.root, exc) from exc

    return write


@dataclass(frozen=True)
class JobRow:
    key: str
    run_id: str
    model: str
    task: str
    metric: str
    params: dict[str, Any]
    model_fingerprint: str
    task_fingerprint: str
    spec: JobSpec | None = None  # None: a job stored before specs existed (a legacy job)
    provenance: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    finished: float = 0.0


class Store:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"store {self.root} exists and is not a directory: pass --store with a folder")
        self.path = self.root / "results.sqlite"
        try:
            (self.root / "examples").mkdir(parents=True, exist_ok=True)
            (self.root / "figures").mkdir(exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._open()
        except (sqlite3.OperationalError, OSError) as exc:  # the disk (full, read-only) or a held lock
            raise _unusable("open", self.path, exc) from exc
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"cannot use {self.path} as a result store ({exc}); expected a harness SQLite store"
            ) from exc

    def _open(self) -> None:
        """Set the connection up and create or migrate the schema. Two runs opening one new store at
        once race to switch it to WAL, and SQLite reports the loser "locked" without waiting for the
        busy timeout; it waits here and tries again until ``LOCK_TIMEOUT``."""
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("PRAGMA foreign_keys=ON")
                with self._transaction() as db:
                    for statement in SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    self._migrate()
                return
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _migrate(self) -> None:
        """Bring a store written by an earlier version up to this schema (columns are only added)."""
        added = {"runs": ("cost", "failures"), "jobs": ("spec", "provenance"), "examples": ("job_key", "indices"),
                 "records": ("interval",)}  # fmt: skip
        for table, wanted in added.items():
            columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for column in wanted:
                if column not in columns:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # runs ---------------------------------------------------------------------------------------
    @_writes
    def start_run(self, run_id: str, suite: str | None, argv: list[str], version: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO runs (run_id, started, suite, argv, harness_version) VALUES (?, ?, ?, ?, ?)",
                (run_id, time.time(), suite, json.dumps(argv), version),
            )

    @_writes
    def finish_run(
        self, run_id: str, status: str, cost: dict[str, Any] | None = None, failures: list[dict] | None = None
    ) -> None:
        """Mark a run finished with its status, what it cost to make (wall time, energy, carbon) and the
        jobs that failed (model, task, metric, error)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET finished = ?, status = ?, cost = ?, failures = ? WHERE run_id = ?",
                (time.time(), status, None if cost is None else json.dumps(cost, sort_keys=True),
                 json.dumps(failures or []), run_id),
            )  # fmt: skip

    def runs(self) -> list[dict[str, Any]]:
        """Every run, oldest first, with its command line and cost decoded."""
        out = []
        for row in self._db.execute("SELECT * FROM runs ORDER BY started"):
            data = dict(row)
            data["argv"] = json.loads(data["argv"] or "[]")
            data["cost"] = json.loads(data["cost"]) if data["cost"] else None
            data["failures"] = json.loads(data["failures"]) if data.get("failures") else []
            out.append(data)
        return out

    # jobs and records ---------------------------------------------------------------------------
    def stored_keys(self, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        found: set[str] = set()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found |= {r[0] for r in self._db.execute(f"SELECT key FROM jobs WHERE key IN ({marks})", chunk)}
        return found

    @_writes
    def save_job(self, job: JobRow, records: list[Record], seconds: float) -> None:
        """Store a finished job and its records atomically, replacing an earlier measurement of it."""
        with self._transaction() as db:
            db.execute("DELETE FROM jobs WHERE key = ?", (job.key,))  # cascades to its records
            db.execute(
                f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) VALUES ({', '.join('?' * len(JOB_COLUMNS))})",
                (
                    job.key, job.run_id, job.model, job.task, job.metric, json.dumps(job.params, sort_keys=True),
                    job.model_fingerprint, job.task_fingerprint, seconds, time.time(),
                    None if job.spec is None else job.spec.to_json(),
                    json.dumps(job.provenance or (records[0].provenance if records else {}), sort_keys=True),
                ),
            )  # fmt: skip
            db.executemany(  # provenance lives on the job, not in each of its records
                f"INSERT INTO records (job_key, {', '.join(RECORD_COLUMNS)}) VALUES (?{', ?' * len(RECORD_COLUMNS)})",
                [(job.key, *self._record_row(r)) for r in records],
            )

    @staticmethod
    def _record_row(r: Record) -> tuple[Any, ...]:
        return (
            r.model, r.task, r.metric, r.slice, r.value, r.ci_low, r.ci_high, r.n, r.direction, r.category,
            json.dumps(r.params, sort_keys=True), json.dumps(list(r.flags)), r.run_id, "{}", r.interval,
        )  # fmt: skip

    def jobs(self, *, models: Iterable[str] | None = None, tasks: Iterable[str] | None = None) -> list[JobRow]:
        """Stored jobs with their specs (None for legacy jobs), oldest first."""
        out = []
        for row in self._db.execute(f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs ORDER BY finished"):
            if (models is not None and row["model"] not in models) or (tasks is not None and row["task"] not in tasks):
                continue
            data = dict(row)
            data["params"] = json.loads(data["params"])
            data["spec"] = JobSpec.from_json(data["spec"]) if data["spec"] else None
            data["provenance"] = json.loads(data["provenance"]) if data["provenance"] else {}
            out.append(JobRow(**data))
        return out

    def records(
        self,
        *,
        keys: Iterable[str] | None = None,
        models: Iterable[str] | None = None,
        tasks: Iterable[str] | None = None,
        metrics: Iterable[str] | None = None,
    ) -> list[Record]:
        """Stored records, filtered by job key, model, task or metric (the job's metric, e.g. ``accuracy``)."""
        where, args = [], []
        filters = (("r.job_key", keys), ("r.model", models), ("r.task", tasks), ("j.metric", metrics))
        for column, values in filters:
            if values is not None:
                values = list(values)
                where.append(f"{column} IN ({','.join('?' * len(values))})" if values else "0")
                args += values
        sql = (
            f"SELECT {', '.join('r.' + c for c in RECORD_COLUMNS)}, r.job_key AS job, j.provenance AS job_provenance "
            "FROM records r JOIN jobs j ON j.key = r.job_key"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + " ORDER BY r.model, r.task, r.metric, r.slice"
        )
        out = []
        for row in self._db.execute(sql, args):
            data = dict(row)
            job_provenance = data.pop("job_provenance")
            if job_provenance:  # a legacy job's records carry their own
                data["provenance"] = job_provenance
            data["flags"] = json.loads(data["flags"])
            data["interval"] = data["interval"] or ""
            data["value"], data["ci_low"], data["ci_high"] = (
                float("nan") if data[c] is None else data[c] for c in ("value", "ci_low", "ci_high")
            )
            out.append(Record.from_dict(data))
        return out

    def count(self, table: str) -> int:
        if table not in ("runs", "jobs", "records", "examples", "figures"):
            raise ValueError(f"unknown table {table!r}")
        return int(self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    # per-example outputs ------------------------------------------------------------------------
    @_writes
    def save_examples(
        self,
        key: str,
        frame: Any,
        *,
        model: str,
        task: str,
        kind: str,
        fingerprints: tuple[str, str],
        run_id: str,
        job_key: str | None = None,
    ) -> None:
        """Store per-example outputs (one row per example, its index in the split in ``example``) of the
        clean pass or of the job ``job_key``; the hash of the example indices identifies the set."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        relative = Path("examples") / f"{key}.parquet"
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.replace_schema_metadata(
            {
                **(table.schema.metadata or {}),
                b"harness": json.dumps({"model": model, "task": task, "kind": kind}).encode(),
            }
        )
        with atomic_write(self.root / relative) as tmp:  # a half-written file (disk full) never stays behind
            pq.write_table(table, tmp)
        with self._transaction() as db:
            db.execute(
                f"INSERT OR REPLACE INTO examples ({', '.join(EXAMPLE_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(EXAMPLE_COLUMNS))})",
                (key, model, task, kind, *fingerprints, str(relative), len(frame), run_id, time.time(), job_key,
                 index_digest(frame["example"].to_numpy())),
            )  # fmt: skip

    def example_sets(
        self, *, models: Iterable[str] | None = None, tasks: Iterable[str] | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]:
        """What per-example outputs the store holds (no data read), oldest first: key, model, task, kind,
        task_fingerprint, rows, run_id, finished, job_key (None for a clean pass) and indices (the hash of
        the examples' indices; computed from the file for outputs stored before it was kept)."""
        wanted = {name: set(v) for name, v in (("model", models), ("task", tasks), ("kind", [kind] if kind else None))
                  if v is not None}  # fmt: skip
        out = []
        for row in self._db.execute(f"SELECT {', '.join(EXAMPLE_COLUMNS)} FROM examples ORDER BY finished"):
            if any(row[column] not in values for column, values in wanted.items()):
                continue
            data = dict(row)
            path = self.root / data.pop("path")
            if not path.is_file():
                continue
            if data["indices"] is None:
                import pyarrow.parquet as pq

                data["indices"] = index_digest(pq.read_table(path, columns=["example"]).column(0).to_numpy())
            out.append(data)
        return out

    def examples_by_key(self, key: str):
        """One stored set of per-example outputs, or None."""
        import pandas as pd

        row = self._db.execute("SELECT path FROM examples WHERE key = ?", (key,)).fetchone()
        if row is None or not (self.root / row["path"]).is_file():
            return None
        return pd.read_parquet(self.root / row["path"])

    def examples(
        self,
        *,
        models: Iterable[str] | None = None,
        tasks: Iterable[str] | None = None,
        kind: str | None = None,
    ):
        """Per-example outputs as one DataFrame, with ``model``, ``task``, ``kind``, ``run_id`` and
        ``task_fingerprint`` columns (a pair evaluated on two subsets has two sets of rows, told apart by
        ``run_id``)."""
        import pandas as pd

        sql = (
            "SELECT model, task, kind, run_id, task_fingerprint, path FROM examples "
            "ORDER BY model, task, kind, finished"
        )
        wanted = {
            name: set(v) for name, v in (("model", models), ("task", tasks), ("kind", [kind] if kind else None)) if v
        }
        frames = []
        for row in self._db.execute(sql).fetchall():
            if any(row[column] not in values for column, values in wanted.items()):
                continue
            path = self.root / row["path"]
            if path.is_file():
                frame = pd.read_parquet(path)
                for position, column in enumerate(("model", "task", "kind", "run_id", "task_fingerprint")):
                    frame.insert(position, column, row[column])
                frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    # figures ------------------------------------------------------------------------------------
    @_writes
    def save_figure(self, job_key: str, name: str, png: bytes, *, model: str, task: str, run_id: str) -> None:
        relative = Path("figures") / f"{hashlib.sha256(png).hexdigest()[:24]}.png"
        target = self.root / relative
        if not target.is_file():
            with atomic_write(target) as tmp:
                tmp.write_bytes(png)
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO figures VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key_of(job=job_key, figure=name), job_key, model, task, name, str(relative), run_id, time.time()),
            )

    def figures(self, *, model: str | None = None, task: str | None = None, name: str | None = None) -> list[dict]:
        """Stored figures, newest first: model, task, name, run_id, job_key and the PNG's absolute ``path``."""
        rows = self._db.execute("SELECT * FROM figures ORDER BY finished DESC").fetchall()
        wanted = {"model": model, "task": task, "name": name}
        return [
            {**{k: row[k] for k in ("model", "task", "name", "run_id", "job_key")}, "path": self.root / row["path"]}
            for row in rows
            if all(value is None or row[column] == value for column, value in wanted.items())
        ]
