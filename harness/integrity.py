"""What a stored figure is checked against: the hashes written beside it, and the processes that write.

A job's records are hashed when they are stored (``records_digest`` over the rows exactly as SQLite
holds them) and each per-example file's bytes are hashed before it is renamed into place
(``file_sha256``); a job's key is the hash of its spec's text. Reading them back, a mismatch means the
database or the file was damaged or edited since: the job is *damaged*, views skip it and the next run
measures it again (``harness.store``), ``harness verify`` lists it (``harness.verify``).

Temporary files carry the id of the process writing them (``.NAME.tmpPID``) and runs the process that
started them, so that a store can tell what a dead process left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

# the record columns a job's digest covers: every column that makes a figure what it is
DIGESTED = ("model", "task", "metric", "slice", "value", "ci_low", "ci_high", "n", "direction", "category",
            "params", "flags", "interval")  # fmt: skip
TEMP_FILE = re.compile(r"^\..+\.tmp(\d+)$")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def records_digest(rows: Iterable[Sequence[Any]]) -> str:
    """The hash of a job's records, each a row of the ``DIGESTED`` columns as stored (NaN is NULL, None),
    in any order."""
    canonical = sorted(json.dumps([None if _nan(v) else v for v in row]) for row in rows)
    return hashlib.sha256("\n".join(canonical).encode()).hexdigest()


def _nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def spec_matches(key: str, spec_text: str) -> bool:
    """Whether a stored spec still hashes to its job's key (``JobSpec.key`` hashes the same text)."""
    try:
        data = json.loads(spec_text)
    except ValueError:
        return False
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:24] == key


def this_process() -> dict[str, Any]:
    """What identifies the running process on this machine, even after its id is reused."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": _started(os.getpid())}


def _started(pid: int) -> float | None:
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:  # no such process, or psutil cannot tell
        return None


def gone(process: dict[str, Any] | None) -> bool:
    """Whether a process recorded by ``this_process`` has ended (False where it cannot be told: on
    another machine, or recorded without an id)."""
    if not isinstance(process, dict) or process.get("host") != socket.gethostname():
        return False
    pid = process.get("pid")
    if not isinstance(pid, int):
        return False
    started = _started(pid)
    if started is None:
        return True
    recorded = process.get("started")
    return isinstance(recorded, int | float) and abs(started - recorded) > 1.0  # the id now names another process


def dead_temp_files(folder: Path) -> list[Path]:
    """Temporary files under ``folder`` whose writing process has ended (``harness.files.atomic_write``)."""
    found = []
    for path in Path(folder).glob(".*.tmp*"):
        match = TEMP_FILE.match(path.name)
        if match and gone({"pid": int(match.group(1)), "host": socket.gethostname()}):
            found.append(path)
    return found
