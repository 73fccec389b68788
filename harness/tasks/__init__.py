"""Tasks: labelled data sets with declared shapes, bounds, classes and sensitive attributes.

A task is named like a model: a registered name (``fashion-mnist``, ``cifar10``) or a source and its
argument (``imagefolder:photos/``, ``csv:loans.csv``, ``hf:imdb``), with options (the label column,
the image size...) from the suite YAML or ``--task-option KEY=VALUE``.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from harness.registry import RegistryError, tasks
from harness.tasks.base import DataNotFoundError, Split, Task, TaskError

__all__ = ["DataNotFoundError", "Split", "Task", "TaskError", "get_task", "parse"]


def parse(name: str) -> tuple[str, str | None]:
    """``"csv:loans.csv"`` -> ``("csv", "loans.csv")``; ``"adult"`` -> ``("adult", None)``."""
    source, sep, arg = name.partition(":")
    return (source, arg) if sep else (name, None)


def get_task(name: str, **options: Any) -> Task:
    """The task ``name`` with ``options``; one instance per process, so its data loads once."""
    return _get(name, json.dumps(options, sort_keys=True, default=str))


def check_task(name: str) -> None:
    """Raise ``RegistryError`` (with suggestions) when no task or task source has this name."""
    source, arg = parse(name)
    factory = tasks.get(source)
    takes = getattr(factory, "argument", None)
    if arg is None and takes:
        raise RegistryError(f"task {source!r} needs its {takes}: {source}:{takes}")
    if arg is not None and not takes:
        raise RegistryError(f"task {source!r} takes no argument; write {source!r}, not {name!r}")


@cache
def _get(name: str, options: str) -> Task:
    check_task(name)
    source, arg = parse(name)
    factory = tasks.get(source)
    kwargs = json.loads(options)
    task = factory(**kwargs) if arg is None else factory(arg, **kwargs)
    if arg is not None:
        task.name = name
    return task
