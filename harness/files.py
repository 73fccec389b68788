"""Files replaced whole: the one way the store, the corruption cache and exports write a file."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def cache_root() -> Path:
    """Where the harness keeps what it can always recompute (file indexes, fingerprints, corrupted
    copies): ``$HARNESS_CACHE``, default ``~/.cache/harness``."""
    return Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "harness"))


def read_cached(path: Path) -> Any:
    """A JSON file of the cache, or None where it is missing or unreadable (then it is recomputed)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def write_cached(path: Path, data: Any) -> None:
    """Write a JSON file of the cache whole; a read-only cache only costs the next run the recomputation."""
    try:
        with atomic_write(path) as tmp:
            tmp.write_text(json.dumps(data))
    except OSError:
        pass


@contextmanager
def atomic_write(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; when the block ends without an error it replaces
    ``target`` in one rename, and whatever happens no temporary file stays behind (a full disk, an
    exception in the writer, an interrupt)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        yield tmp
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def source_digest(paths: list[Path]) -> str:
    """A short hash of source files (names and bytes): the version of the code that computes a figure,
    for job specs and caches."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]
