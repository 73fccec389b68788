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

Every stored figure is checked against what made it (``harness.integrity``): a job's records against
the digest written with them, its spec against its key, its per-example files against their hashes. A
job that fails is *damaged*: reads skip it with one warning that names it and what failed, and
``stored_keys`` leaves it out, so the next run measures it again. A store opened ``readonly`` is read
through a read-only SQLite connection (a read-only mount, a CI artefact): views work, nothing is
written. Opening a store to write removes what dead processes left (their temporary files) and marks
their runs ``killed``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import integrity
from harness.errors import HarnessError
from harness.files import atomic_write
from harness.records import Record
from harness.spec import JobSpec, digest, index_digest

log = logging.getLogger("harness.store")

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
    "job_key", "indices", "sha256",
)  # fmt: skip
# columns added since the first schema, by table (a store written before them gains them when opened to write)
ADDED = {"runs": ("cost", "failures", "process"), "jobs": ("spec", "provenance", "digest"),
         "examples": ("job_key", "indices", "sha256"), "records": ("interval",)}  # fmt: skip
TABLES = ("runs", "jobs", "records", "examples", "figures")


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


def outcome_files(rows: Iterable[Any]) -> tuple[dict[str, list[Any]], dict[tuple[Any, ...], Any]]:
    """Rows of the examples table indexed as jobs read them: a job's own outputs by job key (oldest
    first), and clean passes by (model, model fingerprint, task fingerprint, example indices), the
    latest of each, which a job's spec names."""
    by_job: dict[str, list[Any]] = {}
    clean: dict[tuple[Any, ...], Any] = {}
    for row in rows:
        if row["job_key"]:
            by_job.setdefault(row["job_key"], []).append(row)
        elif row["kind"] == "clean":
            clean[(row["model"], row["model_fingerprint"], row["task_fingerprint"], row["indices"])] = row
    return by_job, clean


def _empty(path: Path, wait: float = 2.0) -> bool:
    """Whether ``path`` is a 0-byte file that stays so: another run creating the same new store holds an
    empty file for a moment before SQLite writes its header, which is not an empty store to refuse."""
    deadline = time.monotonic() + wait
    while path.is_file() and path.stat().st_size == 0:
        if time.monotonic() > deadline:
            return True
        time.sleep(0.05)
    return False


def _read_only_error(exc: Exception) -> bool:
    text = str(exc)
    return "readonly" in text or "read-only" in text or "unable to open database file" in text


def _json(text: str | None, default: Any = None) -> Any:
    """A JSON column's value, or ``default`` where it is empty or not JSON (damage is judged elsewhere)."""
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default


def _reads(method: Callable[..., Any]) -> Callable[..., Any]:
    """A read that meets a damaged database (a garbled page, text that is not UTF-8) raises a
    ``StoreError`` naming the file and what to do, not SQLite's traceback."""

    @functools.wraps(method)
    def read(self: Store, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"cannot read the result store at {self.path}: {exc}. The database is damaged; `harness verify "
                f"--store {self.root}` says where. Restore it from a copy, or pass --store with another folder"
            ) from exc

    return read


def _writes(method: Callable[..., Any]) -> Callable[..., Any]:
    """A write that fails on the disk (full, read-only, gone) raises a ``StoreError`` that says so; the
    transaction was rolled back and files are only ever replaced whole, so nothing stored is damaged."""

    @functools.wraps(method)
    def write(self: Store, *args: Any, **kwargs: Any) -> Any:
        if self.readonly:
            raise StoreError(f"the result store at {self.root} was opened read-only; nothing can be stored in it")
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
    def __init__(self, root: str | Path, *, readonly: bool = False) -> None:
        self.root = Path(root)
        self.readonly = readonly
        self.damage: dict[str, str] = {}  # what reads found damaged: a job key or file, and why
        self._verdicts: dict[str, str | None] = {}  # job key -> why it is damaged, None where intact
        self._files: dict[str, str | None] = {}  # per-example file -> why it is damaged, None where intact
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"store {self.root} exists and is not a directory: pass --store with a folder")
        self.path = self.root / "results.sqlite"
        if _empty(self.path):
            raise StoreError(
                f"{self.path} is empty (0 bytes), not a harness result store; nothing was changed. Move it away "
                "(a new store is made in its place) or pass --store with another folder"
            )
        try:
            if readonly:
                self._db = self._connect_readonly()
            else:
                (self.root / "examples").mkdir(parents=True, exist_ok=True)
                (self.root / "figures").mkdir(exist_ok=True)
                self._db = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._refuse_foreign()
            if readonly:
                self._check_schema()
            else:
                self._open()
                self._clean_leftovers()
        except StoreError:
            raise
        except sqlite3.OperationalError as exc:
            if readonly:
                raise StoreError(f"cannot read the result store at {self.path} ({exc})") from exc
            if _read_only_error(exc):
                raise StoreError(
                    f"the result store at {self.root} cannot be written ({exc}): a run writes what it measures, "
                    "so it needs a store it can write; pass --store with a writable folder. Views (leaderboard, "
                    "card, compare, export, verify) read this store as it is"
                ) from exc
            raise _unusable("open", self.path, exc) from exc
        except OSError as exc:  # the disk (full, read-only) or a held lock
            raise _unusable("open", self.path, exc) from exc
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"cannot use {self.path} as a result store ({exc}); expected a harness SQLite store. Nothing was "
                "changed; `harness verify` says more, or pass --store with another folder"
            ) from exc

    def _connect_readonly(self) -> sqlite3.Connection:
        """A connection that never writes: read-only where SQLite can keep its shared-memory index beside
        the file, else ``immutable`` (a read-only folder or mount, where nothing else writes either)."""
        if not self.path.is_file():
            raise StoreError(f"no result store at {self.root}: run `harness run` first, or pass --store")
        uri = self.path.resolve().as_uri()
        for mode in ("mode=ro", "immutable=1"):
            db = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=LOCK_TIMEOUT, isolation_level=None)
            try:
                db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                return db
            except sqlite3.OperationalError:
                db.close()
        raise StoreError(f"cannot open the result store at {self.path} read-only")

    def _refuse_foreign(self) -> None:
        """A database with tables of its own but not a store's is refused, never written into."""
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        tables.discard("sqlite_sequence")
        foreign = tables - set(TABLES)
        if foreign or ("runs" in tables and "run_id" not in self._columns("runs")):
            raise StoreError(
                f"{self.path} is an SQLite database with the tables {', '.join(sorted(tables))}, not a harness "
                f"result store ({', '.join(TABLES)}); nothing was changed. Pass --store with another folder"
            )
        if not tables and self.readonly:
            raise StoreError(f"{self.path} holds no results yet: run `harness run` first, or pass --store")

    def _check_schema(self) -> None:
        """A store read read-only must have this version's columns: one written by an earlier version is
        brought up to date through a connection that writes, where the file can be written."""
        if all(set(wanted) <= self._columns(table) for table, wanted in ADDED.items()):
            return
        try:
            Store(self.root).close()
        except StoreError:
            raise StoreError(
                f"the result store at {self.root} was written by an earlier harness and cannot be upgraded "
                "read-only: copy it to a folder that can be written and open it there once (any harness "
                "command does)"
            ) from None

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}

    def _clean_leftovers(self) -> None:
        """Remove the temporary files of processes that have ended and mark their runs killed."""
        for folder in ("examples", "figures", "plans"):
            for path in integrity.dead_temp_files(self.root / folder):
                path.unlink(missing_ok=True)
                log.info("removed %s, left by a process that has ended", path)
        for run_id in self.dead_runs():
            with self._transaction() as db:
                db.execute(
                    "UPDATE runs SET status = 'killed', finished = COALESCE(finished, ?) "
                    "WHERE run_id = ? AND status = 'running'",
                    (time.time(), run_id),
                )

    def dead_runs(self) -> list[str]:
        """Runs still marked running whose process has ended (killed, or its machine lost power)."""
        rows = self._db.execute("SELECT run_id, process FROM runs WHERE status = 'running'").fetchall()
        return [row["run_id"] for row in rows if row["process"] and integrity.gone(_json(row["process"]))]

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
        for table, wanted in ADDED.items():
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
                "INSERT INTO runs (run_id, started, suite, argv, harness_version, process) VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, time.time(), suite, json.dumps(argv), version, json.dumps(integrity.this_process())),
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

    @_reads
    def runs(self) -> list[dict[str, Any]]:
        """Every run, oldest first, with its command line, cost and process decoded."""
        out = []
        for row in self._db.execute("SELECT * FROM runs ORDER BY started"):
            data = dict(row)
            data["argv"] = _json(data["argv"], [])
            data["cost"] = _json(data["cost"])
            data["failures"] = _json(data.get("failures"), [])
            data["process"] = _json(data.get("process"))
            out.append(data)
        return out

    # jobs and records ---------------------------------------------------------------------------
    @_reads
    def stored_keys(self, keys: Iterable[str]) -> set[str]:
        """Those of ``keys`` stored intact: a damaged job counts as not stored, so a run measures it again."""
        keys = list(keys)
        found: set[str] = set()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found |= {r[0] for r in self._db.execute(f"SELECT key FROM jobs WHERE key IN ({marks})", chunk)}
        damaged = self.damaged(found)
        for key, why in damaged.items():
            self._warn(key, f"job {key} is damaged ({why}); measuring it again")
        return found - set(damaged)

    @_writes
    def save_job(self, job: JobRow, records: list[Record], seconds: float) -> None:
        """Store a finished job and its records atomically, replacing an earlier measurement of it."""
        rows = [(job.key, *self._record_row(r)) for r in records]
        digested = [[row[1 + RECORD_COLUMNS.index(c)] for c in integrity.DIGESTED] for row in rows]
        with self._transaction() as db:
            db.execute("DELETE FROM jobs WHERE key = ?", (job.key,))  # cascades to its records
            db.execute("DELETE FROM records WHERE job_key = ?", (job.key,))  # those of a job row deleted by hand
            db.execute(
                f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}, digest) VALUES ({', '.join('?' * len(JOB_COLUMNS))}, ?)",
                (
                    job.key, job.run_id, job.model, job.task, job.metric, json.dumps(job.params, sort_keys=True),
                    job.model_fingerprint, job.task_fingerprint, seconds, time.time(),
                    None if job.spec is None else job.spec.to_json(),
                    json.dumps(job.provenance or (records[0].provenance if records else {}), sort_keys=True),
                    integrity.records_digest(digested),
                ),
            )  # fmt: skip
            db.executemany(  # provenance lives on the job, not in each of its records
                f"INSERT INTO records (job_key, {', '.join(RECORD_COLUMNS)}) VALUES (?{', ?' * len(RECORD_COLUMNS)})",
                rows,
            )
        self._verdicts.pop(job.key, None)

    @staticmethod
    def _record_row(r: Record) -> tuple[Any, ...]:
        return (
            r.model, r.task, r.metric, r.slice, *(None if v != v else v for v in (r.value, r.ci_low, r.ci_high)),
            r.n, r.direction, r.category, json.dumps(r.params, sort_keys=True), json.dumps(list(r.flags)), r.run_id,
            "{}", r.interval,
        )  # fmt: skip

    @_reads
    def jobs(self, *, models: Iterable[str] | None = None, tasks: Iterable[str] | None = None) -> list[JobRow]:
        """Stored jobs with their specs (None for legacy jobs), oldest first; damaged jobs are left out."""
        out = []
        rows = [row for row in self._db.execute(f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs ORDER BY finished")
                if (models is None or row["model"] in models) and (tasks is None or row["task"] in tasks)]  # fmt: skip
        damaged = self.damaged(row["key"] for row in rows)
        for row in rows:
            if row["key"] in damaged:
                self._skip(row["key"], row, damaged[row["key"]])
                continue
            data = dict(row)
            data["params"] = json.loads(data["params"])
            data["spec"] = JobSpec.from_json(data["spec"]) if data["spec"] else None
            data["provenance"] = _json(data["provenance"], {})
            out.append(JobRow(**data))
        return out

    @_reads
    def records(
        self,
        *,
        keys: Iterable[str] | None = None,
        models: Iterable[str] | None = None,
        tasks: Iterable[str] | None = None,
        metrics: Iterable[str] | None = None,
    ) -> list[Record]:
        """Stored records, filtered by job key, model, task or metric (the job's metric, e.g. ``accuracy``);
        the records of damaged jobs are left out."""
        where, args = [], []
        filters = (("r.job_key", keys), ("r.model", models), ("r.task", tasks), ("j.metric", metrics))
        for column, values in filters:
            if values is not None:
                values = list(values)
                where.append(f"{column} IN ({','.join('?' * len(values))})" if values else "0")
                args += values
        sql = (
            f"SELECT {', '.join('r.' + c for c in RECORD_COLUMNS)}, r.job_key AS job, j.provenance AS job_provenance, "
            "j.metric AS job_metric FROM records r JOIN jobs j ON j.key = r.job_key"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + " ORDER BY r.model, r.task, r.metric, r.slice"
        )
        rows = self._db.execute(sql, args).fetchall()
        damaged = self.damaged({row["job"] for row in rows})
        out = []
        for row in rows:
            data = dict(row)
            if data["job"] in damaged:
                self._skip(data["job"], {**data, "metric": data["job_metric"]}, damaged[data["job"]])
                continue
            data.pop("job_metric")
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

    @_reads
    def count(self, table: str) -> int:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        return int(self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    # integrity ----------------------------------------------------------------------------------
    @_reads
    def damaged(self, keys: Iterable[str] | None = None) -> dict[str, str]:
        """The stored jobs (of ``keys``; default all) whose figures no longer match what made them, and
        why: a spec that does not hash to its key, records that differ from the digest stored with them, a
        per-example file of the job (or the clean pass its outcomes come from) missing or not matching its
        hash. Jobs stored before digests were kept are judged by what they have. Judged once per store."""
        wanted = None if keys is None else set(keys)
        todo = [row for row in self._db.execute("SELECT key, model, metric, spec, digest FROM jobs")
                if row["key"] not in self._verdicts and (wanted is None or row["key"] in wanted)]  # fmt: skip
        if todo:
            self._judge(todo)
        return {k: why for k, why in self._verdicts.items() if why and (wanted is None or k in wanted)}

    @_reads
    def integrity_check(self) -> list[str]:
        """SQLite's own check of the database file: ``["ok"]`` or what is wrong."""
        return [row[0] for row in self._db.execute("PRAGMA integrity_check")]

    @_reads
    def orphan_records(self) -> dict[str, int]:
        """Records whose job row is gone (deleted by hand), counted by job key."""
        sql = "SELECT job_key, COUNT(*) FROM records WHERE job_key NOT IN (SELECT key FROM jobs) GROUP BY job_key"
        return {key: count for key, count in self._db.execute(sql)}

    @_reads
    def index(self, table: str) -> list[dict[str, Any]]:
        """The raw rows of ``jobs``, ``examples`` or ``figures`` (what the store says it holds, unjudged)."""
        if table not in ("jobs", "examples", "figures"):
            raise ValueError(f"unknown table {table!r}")
        return [dict(row) for row in self._db.execute(f"SELECT * FROM {table}")]

    def _judge(self, jobs: list[sqlite3.Row]) -> None:
        from harness.measures import metric_of, outcomes

        columns = ", ".join(integrity.DIGESTED)
        held: dict[str, list[tuple[Any, ...]]] = {}
        keys = [row["key"] for row in jobs]
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            sql = f"SELECT job_key, {columns} FROM records WHERE job_key IN ({','.join('?' * len(chunk))})"
            for row in self._db.execute(sql, chunk):
                held.setdefault(row[0], []).append(tuple(row)[1:])
        by_job, clean = outcome_files(self._db.execute("SELECT * FROM examples ORDER BY finished").fetchall())
        reads_clean = {metric_of(m.name) for m in outcomes("clean")}  # metrics whose records the clean pass gives
        for job in jobs:
            why = None
            spec = _json(job["spec"]) if job["spec"] else None
            if job["spec"] and not integrity.spec_matches(job["key"], job["spec"]):
                why = "results.sqlite: its spec no longer hashes to its key"
            elif job["digest"] and integrity.records_digest(held.get(job["key"], [])) != job["digest"]:
                why = "results.sqlite: its records differ from those stored with it"
            else:
                linked = list(by_job.get(job["key"], []))
                if spec is not None and job["metric"] in reads_clean:
                    found = clean.get((job["model"], spec["model"]["fingerprint"], spec["task"]["fingerprint"],
                                       spec["examples"]["indices"]))  # fmt: skip
                    linked += [found] if found is not None else []
                why = next((problem for f in linked if (problem := self.file_problem(f))), None)
            self._verdicts[job["key"]] = why

    def file_problem(self, row: sqlite3.Row | dict[str, Any]) -> str | None:
        """What is wrong with a per-example file (missing, unreadable, not its stored hash), or None."""
        relative = row["path"]
        if relative not in self._files:
            path = self.root / relative
            try:
                actual = integrity.file_sha256(path)
                expected = row["sha256"]
                self._files[relative] = (f"{relative}: its bytes differ from the hash stored when it was written"
                                         if expected and actual != expected else None)  # fmt: skip
            except FileNotFoundError:
                self._files[relative] = f"{relative} is missing"
            except OSError as exc:
                self._files[relative] = f"{relative} cannot be read ({exc})"
        return self._files[relative]

    def _skip(self, key: str, job: Any, why: str) -> None:
        self._warn(
            key,
            f"skipped job {key[:12]} ({job['model']} on {job['task']}, {job['metric']}), damaged: {why}. The next "
            "`harness run` of it measures it again; `harness verify` lists everything damaged",
        )

    def _warn(self, what: str, message: str) -> None:
        """Say once per store what was found damaged and skipped."""
        if what not in self.damage:
            self.damage[what] = message
            log.warning(message)

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
            sha256 = integrity.file_sha256(tmp)
        with self._transaction() as db:
            db.execute(
                f"INSERT OR REPLACE INTO examples ({', '.join(EXAMPLE_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(EXAMPLE_COLUMNS))})",
                (key, model, task, kind, *fingerprints, str(relative), len(frame), run_id, time.time(), job_key,
                 index_digest(frame["example"].to_numpy()), sha256),
            )  # fmt: skip
        self._files.pop(str(relative), None)
        self._verdicts.clear()  # the jobs that read these outputs are judged again

    @_reads
    def example_sets(
        self, *, models: Iterable[str] | None = None, tasks: Iterable[str] | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]:
        """What per-example outputs the store holds intact, oldest first: key, model, task, kind,
        task_fingerprint, rows, run_id, finished, job_key (None for a clean pass) and indices (the hash of
        the examples' indices; computed from the file for outputs stored before it was kept). A missing or
        damaged file is left out, with a warning."""
        wanted = {name: set(v) for name, v in (("model", models), ("task", tasks), ("kind", [kind] if kind else None))
                  if v is not None}  # fmt: skip
        out = []
        for row in self._db.execute(f"SELECT {', '.join(EXAMPLE_COLUMNS)} FROM examples ORDER BY finished"):
            if any(row[column] not in values for column, values in wanted.items()):
                continue
            if not (self.root / row["path"]).is_file():
                continue  # a set whose file is gone is not held (the jobs that read it are judged damaged)
            if self.file_problem(row) is not None:
                self._warn(row["path"], f"skipped the per-example outputs {self.file_problem(row)}")
                continue
            data = dict(row)
            path = self.root / data.pop("path")
            if data["indices"] is None:
                import pyarrow.parquet as pq

                try:
                    data["indices"] = index_digest(pq.read_table(path, columns=["example"]).column(0).to_numpy())
                except Exception as exc:  # pyarrow's errors for a truncated or foreign file
                    self._warn(
                        str(path), f"skipped the per-example outputs {path}: not a readable Parquet file ({exc})"
                    )
                    continue
            out.append(data)
        return out

    @_reads
    def examples_by_key(self, key: str):
        """One stored set of per-example outputs, or None (where it is missing or damaged: with a warning)."""
        row = self._db.execute("SELECT path, sha256 FROM examples WHERE key = ?", (key,)).fetchone()
        if row is None or not (self.root / row["path"]).is_file():
            return None
        return self._read_examples(row)

    def _read_examples(self, row: sqlite3.Row):
        import pandas as pd

        problem = self.file_problem(row)
        if problem is None:
            try:
                return pd.read_parquet(self.root / row["path"])
            except Exception as exc:  # pyarrow's errors for a truncated or foreign file, stored before hashes
                problem = f"{row['path']} is not a readable Parquet file ({str(exc).splitlines()[0]})"
        self._warn(row["path"], f"skipped the per-example outputs {problem}")
        return None

    @_reads
    def examples(
        self,
        *,
        models: Iterable[str] | None = None,
        tasks: Iterable[str] | None = None,
        kind: str | None = None,
    ):
        """Per-example outputs as one DataFrame, with ``model``, ``task``, ``kind``, ``run_id`` and
        ``task_fingerprint`` columns (a pair evaluated on two subsets has two sets of rows, told apart by
        ``run_id``); missing or damaged files are left out, with a warning."""
        import pandas as pd

        sql = (
            "SELECT model, task, kind, run_id, task_fingerprint, path, sha256 FROM examples "
            "ORDER BY model, task, kind, finished"
        )
        wanted = {
            name: set(v) for name, v in (("model", models), ("task", tasks), ("kind", [kind] if kind else None)) if v
        }
        frames = []
        for row in self._db.execute(sql).fetchall():
            if any(row[column] not in values for column, values in wanted.items()):
                continue
            if (self.root / row["path"]).is_file() and (frame := self._read_examples(row)) is not None:
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

    @_reads
    def figures(self, *, model: str | None = None, task: str | None = None, name: str | None = None) -> list[dict]:
        """Stored figures, newest first: model, task, name, run_id, job_key and the PNG's absolute ``path``;
        a figure whose file is missing or not the picture its name hashes is left out, with a warning."""
        rows = self._db.execute("SELECT * FROM figures ORDER BY finished DESC").fetchall()
        wanted = {"model": model, "task": task, "name": name}
        out = []
        for row in rows:
            if not all(value is None or row[column] == value for column, value in wanted.items()):
                continue
            if (problem := self.figure_problem(row["path"])) is not None:
                self._warn(row["path"], f"skipped the figure {row['name']} of {row['model']}: {problem}")
                continue
            out.append({**{k: row[k] for k in ("model", "task", "name", "run_id", "job_key")},
                        "path": self.root / row["path"]})  # fmt: skip
        return out

    def figure_problem(self, relative: str) -> str | None:
        """What is wrong with a stored figure's file (its name is its content's hash), or None."""
        if relative not in self._files:
            try:
                actual = hashlib.sha256((self.root / relative).read_bytes()).hexdigest()[:24]
                self._files[relative] = (
                    None if Path(relative).stem == actual else f"{relative} is not the picture stored"
                )
            except OSError:
                self._files[relative] = f"{relative} is missing"
        return self._files[relative]
