"""A built model's fingerprint, remembered by everything that determined it, so that a warm plan of a
model that only its files determine (a timm architecture with a checkpoint, a TorchScript file, a
variant of a zoo model) neither imports its library nor builds it.

The key holds the model's name and options, the task's fingerprint, the versions of the libraries
that build it, and each determining file's path, size and modification time (the same stamp the file
index trusts); a model drawn at random when it is built (no checkpoint) has no determining files and is
never remembered. The planner checks a remembered fingerprint again when it runs the pair: a model
whose loaded weights differ from what was remembered fails with the reason, nothing is stored under
the wrong key. Kept under ``$HARNESS_CACHE/fingerprints/``, one small file per key.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from harness import __version__
from harness.files import cache_root, read_cached, write_cached

LIBRARIES = ("torch", "timm", "transformers", "torchvision")


def _versions() -> dict[str, str]:
    out = {"harness": __version__}
    for package in LIBRARIES:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "absent"
    return out


def _where(name: str, options: dict[str, Any], task_fingerprint: str, files: list[Path]) -> Path | None:
    stamps = []
    for path in files:
        try:
            status = os.stat(path)
        except OSError:
            return None  # a missing file: loading it says what is wrong
        stamps.append([str(path.resolve()), status.st_size, status.st_mtime_ns])
    payload = {"name": name, "options": options, "task": task_fingerprint, "files": stamps, "versions": _versions()}
    key = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return cache_root() / "fingerprints" / f"{key}.json"


def remembered(name: str, options: dict[str, Any], task_fingerprint: str, files: list[Path]) -> str | None:
    """The fingerprint remembered for this model, or None."""
    where = _where(name, options, task_fingerprint, files)
    held = read_cached(where) if where else None
    return held.get("fingerprint") if isinstance(held, dict) else None


def remember(name: str, options: dict[str, Any], task_fingerprint: str, files: list[Path], fingerprint: str) -> None:
    where = _where(name, options, task_fingerprint, files)
    if where is not None:
        write_cached(where, {"name": name, "fingerprint": fingerprint})
