"""A warm re-run that answers from the store without importing torch.

Planning a run loads models and tasks to fingerprint them, which imports torch (2 s of a 3 s warm
run). But a run whose inputs have not changed plans the same jobs: after a complete run the command
keeps its plan's job keys in the store (``plans/<key>.json``), keyed by everything the plan is made
from: the resolved suite, the bytes' identity (path, size, modification time) of every file of the
installed package (code, configs, shipped data and zoo weights) and the settings read from the
environment. The next identical run finds them all stored and prints their records.

Only runs whose every input lives in the package take this path: zoo models (and their variants) on
the shipped tasks and OOD sets, no device-bound metric, the device ``auto`` or ``cpu``. Anything else
(a user's model or data, a hub name, a missing job) plans as usual.

A plan file is data the next run trusts only when it is well-formed and its digest (over the plan's
key, pairs and job keys) matches: a plan copied from another command (a ``--limit`` run), cut by hand
or garbled is ignored, and the run plans as usual. The jobs it names are then checked as every stored
job is (``Store.stored_keys``): a damaged one is measured again."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from harness.files import atomic_write, read_cached

PACKAGE = Path(__file__).resolve().parent
SHIPPED_TASKS = {"fashion-mnist", "adult", "german-credit", "sklearn-digits", "german-as-adult", "noise:uniform",
                 "noise:gaussian", "permuted-columns"}  # fmt: skip
ENVIRONMENT = ("HARNESS_DATA", "HARNESS_IMAGENET", "HARNESS_IMAGENET_C", "CUDA_VISIBLE_DEVICES")


def package_identity() -> str:
    """A hash of every file of the package by path, size and modification time."""
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            path = Path(folder) / name
            stat = path.stat()
            digest.update(f"{path.relative_to(PACKAGE)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def plan_key(suite: Any, device: str | None) -> str | None:
    """The key of a run's plan, or None where the run has an input outside the package."""
    if (device or suite.device) not in ("auto", "cpu"):
        return None
    spec = suite.model_dump(mode="json")
    for group in spec["groups"]:
        if not all(m["name"].startswith("zoo:") and not m["checkpoint"] and not m["options"] for m in group["models"]):
            return None  # weights or options from outside the package
        if not all(t["name"] in SHIPPED_TASKS and not t["options"] for t in group["tasks"]):
            return None
        for metric in group["metrics"]:
            sets = (metric.get("params") or {}).get("sets") or ()
            if not all(s in SHIPPED_TASKS or s.startswith("corruption:") for s in sets):
                return None
    what = {"suite": spec, "package": package_identity(), "env": {k: os.environ.get(k) for k in ENVIRONMENT}}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _digest(key: str, pairs: Any, jobs: Any) -> str:
    return hashlib.sha256(json.dumps([key, pairs, jobs], sort_keys=True).encode()).hexdigest()


def remember(root: Path, key: str, pairs: list[tuple[str, str]], jobs: list[str]) -> None:
    pairs = [list(p) for p in pairs]
    try:
        with atomic_write(Path(root) / "plans" / f"{key}.json") as tmp:
            tmp.write_text(json.dumps({"key": key, "pairs": pairs, "jobs": jobs, "digest": _digest(key, pairs, jobs)}))
    except OSError:  # a read-only store only costs the next run its planning
        pass


def recall(root: Path, key: str) -> tuple[list[tuple[str, str]], list[str]] | None:
    """The pairs and job keys of the plan remembered under ``key``, or None where there is none, or it is
    malformed, or its digest does not match (forged, cut, copied from another command)."""
    held = read_cached(Path(root) / "plans" / f"{key}.json")
    if not well_formed(held) or held["key"] != key:
        return None
    return [tuple(p) for p in held["pairs"]], held["jobs"]


def well_formed(held: Any) -> bool:
    """Whether a plan file's content has the shape ``remember`` writes and its digest matches."""
    if not isinstance(held, dict) or not all(isinstance(held.get(k), str) for k in ("key", "digest")):
        return False
    pairs, jobs = held.get("pairs"), held.get("jobs")
    if not isinstance(jobs, list) or not jobs or not all(isinstance(j, str) for j in jobs):
        return False
    if not isinstance(pairs, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in pairs
    ):
        return False
    return held["digest"] == _digest(held["key"], pairs, jobs)
