"""Files replaced whole: the one way the store, the corruption cache and exports write a file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
