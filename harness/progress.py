"""Progress reporting for long work: rich bars on the terminal (stderr), or nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


class Reporter:
    """Receives progress events; this base class ignores them (for ``--quiet`` and library use)."""

    def start(self, total: int, cached: int) -> None: ...
    def pair_started(self, model: str, task: str) -> None: ...
    def batch(self, done: int, total: int) -> None: ...
    def stage(self, label: str, done: int, total: int) -> None: ...
    def job_started(self, job: Any) -> None: ...
    def job_done(self, job: Any, error: str | None) -> None: ...
    def finish(self) -> None: ...


NullReporter = Reporter


class RichReporter(Reporter):
    """One bar for the jobs of the run, one for the current pair: the batches of its clean pass, then
    the stages of each long metric (attacks, corruptions)."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("eta"), TimeRemainingColumn(), console=console, transient=False,
        )  # fmt: skip
        self._jobs: Any = None
        self._batches: Any = None
        self._job_label = ""

    def start(self, total: int, cached: int) -> None:
        self.progress.start()
        label = f"jobs ({cached} from the store)" if cached else "jobs"
        self._jobs = self.progress.add_task(label, total=total, completed=cached)

    def pair_started(self, model: str, task: str) -> None:
        if self._batches is not None:
            self.progress.remove_task(self._batches)
        self._batches = self.progress.add_task(f"  {model} on {task}", total=None)

    def batch(self, done: int, total: int) -> None:
        if self._batches is not None:
            self.progress.update(self._batches, completed=done, total=total)

    def stage(self, label: str, done: int, total: int) -> None:
        if self._batches is not None:
            self.progress.update(self._batches, description=f"{self._job_label} · {label}", completed=done, total=total)

    def job_started(self, job: Any) -> None:
        self._job_label = f"  {job.model} on {job.task}: {job.metric}"
        if self._batches is not None:
            self.progress.update(self._batches, description=self._job_label)

    def job_done(self, job: Any, error: str | None) -> None:
        self.progress.advance(self._jobs)

    def finish(self) -> None:
        if self._batches is not None:
            self.progress.remove_task(self._batches)
            self._batches = None
        self.progress.stop()
