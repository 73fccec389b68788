"""What a folder of image files holds, known without decoding it: per file its size, a hash of its raw
bytes and its header (grey or not, height, width), kept in a sidecar index keyed by (path, size,
modification time) so that a warm plan of 50,000 files reads no image.

The index lives under ``$HARNESS_CACHE`` (default ``~/.cache/harness``) in ``file-index/``, one JSON
file per folder; a data folder may be read-only. A file whose size or time changed is read again.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from harness.files import cache_root, read_cached, write_cached

GREY_MODES = ("1", "L", "I", "I;16", "F")


@dataclass(frozen=True)
class Entry:
    """One file: its size, the hash of its bytes, and what its header says."""

    size: int
    digest: str
    grey: bool
    height: int
    width: int


def _read(path: str) -> Entry | str:
    """The entry of one file, or why PIL cannot read it."""
    from PIL import Image, UnidentifiedImageError

    with open(path, "rb") as file:
        raw = file.read()
    try:
        with Image.open(path) as image:
            grey, (width, height) = image.mode in GREY_MODES, image.size
    except (UnidentifiedImageError, OSError) as exc:
        return f"{path} is not an image that PIL can read ({exc})"
    return Entry(len(raw), hashlib.sha256(raw).hexdigest()[:32], grey, height, width)


def file_index(root: Path, paths: list[str], threads: int = 8) -> dict[str, Entry | str]:
    """Every path's entry (or the reason it is not an image), from the sidecar index where the file's
    size and modification time are unchanged, else read (in ``threads`` threads) and written back.
    ``paths`` lie under ``root`` as listed from it."""
    prefix = len(str(root)) + 1  # the paths were listed under ``root``: their names relative to it
    where = cache_root() / "file-index" / f"{hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]}.json"
    known = read_cached(where) or {}
    out: dict[str, Entry | str] = {}
    todo: list[tuple[str, str, list[int]]] = []
    for path in paths:
        status = os.stat(path)
        name, stamp = path[prefix:], [status.st_size, status.st_mtime_ns]
        held = known.get(name)
        if held and held[:2] == stamp:
            out[path] = Entry(held[0], *held[2:])
        else:
            todo.append((path, name, stamp))
    if todo:
        with ThreadPoolExecutor(threads) as pool:  # hashing and header reads release the GIL
            for (path, name, stamp), entry in zip(todo, pool.map(_read, [t[0] for t in todo]), strict=True):
                out[path] = entry
                if isinstance(entry, Entry):
                    known[name] = [*stamp, entry.digest, entry.grey, entry.height, entry.width]
        write_cached(where, known)
    return out
