"""Executors map a job function over jobs and yield the results as they come; they know nothing of
metrics. The in-process executor runs them one after another; a Ray executor (for many machines)
implements the same ``map``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar

J = TypeVar("J")
R = TypeVar("R")


class Executor(Protocol):
    def map(self, fn: Callable[[J], Iterable[R]], jobs: Iterable[J]) -> Iterator[R]:
        """Apply ``fn`` to every job, yielding each result as soon as it exists."""
        ...


class InProcessExecutor:
    def map(self, fn: Callable[[J], Iterable[R]], jobs: Iterable[J]) -> Iterator[R]:
        for job in jobs:
            yield from fn(job)
