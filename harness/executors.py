"""Executors map a job function over jobs and yield the results as they come; they know nothing of
metrics. The in-process executor runs them one after another; the Ray executor runs each job as a Ray
generator task (on this machine or a cluster) and yields each of a job's results as the task yields it,
so the caller (the only writer of the store) commits them as they arrive: a killed run loses only what
was in flight. Failed work is retried by the caller alone (the runner's ``--retries``), never by Ray
as well.

Each job may declare what it needs (``Needs``): a GPU, or a whole device to itself (jobs that time or
measure energy must not share their device with other work).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from harness.errors import HarnessError

J = TypeVar("J")
R = TypeVar("R")
log = logging.getLogger(__name__)


class ExecutorError(HarnessError, RuntimeError):
    """An executor that cannot start (Ray missing, a cluster that cannot be reached)."""


@dataclass(frozen=True)
class Needs:
    gpu: bool = False  # the job runs on a CUDA device
    exclusive: bool = False  # the job times or measures energy: nothing else may run on its device meanwhile


Failed = Callable[[Any, BaseException], Iterable[Any]]  # (job, error) -> results that record the failure


class Executor(Protocol):
    def map(
        self,
        fn: Callable[[J], Iterable[R]],
        jobs: Iterable[J],
        needs: Callable[[J], Needs] | None = None,
        on_error: Failed | None = None,
    ) -> Iterator[R]:
        """Apply ``fn`` to every job, yielding each result as soon as it exists; a job that raises yields
        ``on_error(job, error)`` instead (or the error propagates when there is no ``on_error``)."""
        ...


class InProcessExecutor:
    def map(self, fn, jobs, needs=None, on_error=None):  # type: ignore[no-untyped-def]
        for job in jobs:
            try:
                yield from fn(job)
            except Exception as exc:
                if on_error is None:
                    raise
                yield from on_error(job, exc)


def _stream_job(fn: Callable[[Any], Iterable[Any]], job: Any, cwd: str) -> Iterator[Any]:
    """The body of a Ray generator task: the job's results, each sent back as it is made. It runs in
    the driver's working folder where that exists on the node (a local instance, a shared file system),
    so relative paths in task and model names mean what they meant to the user."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    yield from fn(job)


class RayExecutor:
    """Runs each job as a Ray task. ``address``: ``None`` starts a local Ray instance sized to this
    machine, ``"auto"`` joins the cluster this machine belongs to, ``"HOST:PORT"`` a given one. Ray
    does not run a task again (a retried generator would send its results twice); a job whose worker
    died comes back through ``on_error``, and the runner's retries decide."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        self.address, self.num_cpus = address, num_cpus

    def _ray(self) -> Any:
        try:
            import ray
        except ImportError:
            raise ExecutorError(
                "the Ray executor needs ray: pip install -e '.[ray]' (or pip install 'ray>=2.9')"
            ) from None
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "runtime_env": {"env_vars": _forwarded_env()}}  # fmt: skip
            if self.address is None:
                kwargs["num_cpus"] = self.num_cpus or os.cpu_count()
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ExecutorError(
                    f"cannot start or reach Ray at {self.address or 'a local instance'}: {exc}"
                ) from None
        return ray

    def _options(self, ray: Any, need: Needs) -> dict[str, Any]:
        options: dict[str, Any] = {"max_retries": 0, "num_returns": "streaming"}
        if need.gpu:
            options["num_gpus"] = 1  # a whole GPU: nothing else is scheduled on it meanwhile
        if need.exclusive and not need.gpu:  # a whole machine's CPUs: timings and energy are not shared
            options["num_cpus"] = max(int(n["Resources"].get("CPU", 1)) for n in ray.nodes() if n["Alive"])
        return options

    def map(self, fn, jobs, needs=None, on_error=None):  # type: ignore[no-untyped-def]
        ray = self._ray()
        remote = ray.remote(_stream_job)
        pending: dict[Any, Any] = {}  # a task's stream of results -> its job
        for job in jobs:
            need = needs(job) if needs else Needs()
            pending[remote.options(**self._options(ray, need)).remote(fn, job, os.getcwd())] = job
        while pending:
            (stream,), _ = ray.wait(list(pending), num_returns=1)
            try:
                ref = next(stream)
            except StopIteration:
                del pending[stream]
                continue
            try:
                item = ray.get(ref)
            except Exception as exc:  # the task raised, or its worker died
                job = pending.pop(stream)
                if on_error is None:
                    raise
                cause = getattr(exc, "cause", None)
                yield from on_error(job, cause if isinstance(cause, BaseException) else exc)
                continue
            yield item


def _forwarded_env() -> dict[str, str]:
    """Settings the workers must share with the driver (offline hubs, caches, data locations)."""
    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HARNESS_DATA", "HARNESS_CACHE", "HARNESS_IMAGENET",
             "GIT_PYTHON_REFRESH", "PYTHONPATH", "HF_HOME")  # fmt: skip
    return {n: os.environ[n] for n in names if n in os.environ}


def make_executor(name: str, address: str | None = None) -> Executor:
    if name == "ray":
        return RayExecutor(address)
    return InProcessExecutor()
