"""Which stored evaluation a view shows: for each (model, task, metric), and device where the figure
depends on it, exactly one job, so that a leaderboard, a card, ``compare`` or an export never mixes
two specs in one figure family.

By default the most complete evaluation wins (most examples, then the latest): a ``--limit 100`` run
never displaces a full-test-set one. A suite's board first prefers the jobs measured with that suite's
own metric parameters (``Choice.suite``): the compression suite's shorter efficiency runs do not
displace the efficiency suite's on its board. A ``Choice`` picks others: only runs with a given ``--limit`` or
``--seed``, or named jobs (``--spec KEY``, a prefix of the job key that ``harness export --what jobs``
lists).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import HarnessError
from harness.records import Record
from harness.store import JobRow, Store


class SelectionError(HarnessError, ValueError):
    """A choice that matches no stored job; the message says what the store holds."""


@dataclass(frozen=True)
class Choice:
    limit: int | None = None  # only jobs of runs cut to this many examples (--limit)
    seed: int | None = None  # only jobs of runs with this seed
    specs: tuple[str, ...] = ()  # job keys (or prefixes) that win their family whatever the rest
    suite: Mapping[tuple[str, str, str], Mapping[str, Any]] = field(default_factory=dict)  # preferred params

    def prefers(self, job: JobRow) -> bool:
        """Whether the job was measured with the parameters the suite gives its (model, task, metric)
        (those it leaves to be resolved at run time, None, match anything)."""
        wanted = self.suite.get((job.model, job.task, job.metric))
        if wanted is None or job.spec is None:
            return False
        held = job.spec.metric.params
        return all(v is None or held.get(k) == v for k, v in wanted.items())

    def admits(self, job: JobRow) -> bool:
        spec = job.spec
        if self.limit is not None and (spec is None or (spec.examples.subset or {}).get("limit") != self.limit):
            return False
        return self.seed is None or (spec is not None and spec.seed == self.seed)

    def names(self, job: JobRow) -> bool:
        return any(job.key.startswith(prefix) for prefix in self.specs)

    def describe(self) -> str:
        parts = [f"--limit {self.limit}" if self.limit is not None else "", f"--seed {self.seed}" if
                 self.seed is not None else "", *(f"--spec {s}" for s in self.specs)]  # fmt: skip
        return " ".join(p for p in parts if p) or "the most complete evaluation"


def family(job: JobRow, device: str | None = None) -> tuple[Any, ...]:
    """What one figure family of one model is: its model, task and metric, and the device of a
    device-bound metric (a model measured on two devices has two families, one row per device)."""
    if job.spec is not None and job.spec.device is not None:
        device = str(job.spec.device.get("descriptor"))
    return job.model, job.task, job.metric, device


def examples_count(job: JobRow, legacy_n: dict[str, int]) -> int:
    """How many examples the job evaluated: from its spec, or for a legacy job its largest record n."""
    return job.spec.examples.count if job.spec is not None else legacy_n.get(job.key, 0)


def choose(jobs: Iterable[JobRow], choice: Choice = Choice(), legacy_n: dict[str, int] | None = None,
           legacy_device: dict[str, str] | None = None) -> dict[tuple[Any, ...], JobRow]:  # fmt: skip
    """The job shown for each family: one the choice names, else of the admitted jobs one with the suite's
    parameters, then the one with the most examples, then the latest."""
    legacy_n, legacy_device = legacy_n or {}, legacy_device or {}
    best: dict[tuple[Any, ...], JobRow] = {}
    named: dict[tuple[Any, ...], JobRow] = {}
    for job in jobs:
        fam = family(job, legacy_device.get(job.key))
        if choice.names(job):
            named[fam] = job
        if not choice.admits(job):
            continue
        current = best.get(fam)
        rank = (choice.prefers(job), examples_count(job, legacy_n), job.finished)
        if current is None or rank > (choice.prefers(current), examples_count(current, legacy_n), current.finished):
            best[fam] = job
    return {**best, **named}


def selected(store: Store, choice: Choice = Choice(), *, models: Iterable[str] | None = None,
             tasks: Iterable[str] | None = None) -> list[Record]:  # fmt: skip
    """The records of the chosen job of each family."""
    models = None if models is None else list(models)
    tasks = None if tasks is None else list(tasks)
    records = store.records(models=models, tasks=tasks)
    legacy_n: dict[str, int] = {}
    legacy_device: dict[str, str] = {}
    for r in records:
        legacy_n[r.job] = max(legacy_n.get(r.job, 0), r.n)
        if r.category == "efficiency" and "device" in r.provenance:
            legacy_device[r.job] = str(r.provenance["device"])
    jobs = store.jobs(models=models, tasks=tasks)
    chosen = choose(jobs, choice, legacy_n, legacy_device)
    keys = {job.key for job in chosen.values()}
    if (choice.limit is not None or choice.seed is not None or choice.specs) and not keys:
        raise SelectionError(f"no stored job matches {choice.describe()}; `harness export --what jobs` lists them")
    return [r for r in records if r.job in keys]
