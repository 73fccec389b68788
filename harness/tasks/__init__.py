"""Tasks: labelled data sets with declared shapes, bounds, classes and sensitive attributes."""

from __future__ import annotations

from functools import cache

from harness.registry import tasks
from harness.tasks.base import DataNotFoundError, Split, Task

__all__ = ["DataNotFoundError", "Split", "Task", "get_task"]


@cache
def get_task(name: str) -> Task:
    """The task registered under ``name``; one instance per process, so its data loads once."""
    return tasks.get(name)()
