"""The ``Metric`` interface."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from harness import stats
from harness.measures import Measure

if TYPE_CHECKING:
    from harness.context import EvalContext
    from harness.records import Record
    from harness.tasks.base import Task


DEFAULT_EXAMPLES = 1000  # what the attacks and corruptions evaluate unless told otherwise


def resolve_examples(examples: int | None, n: int, cut: bool, default: int = DEFAULT_EXAMPLES) -> int:
    """How many of the n evaluated examples an expensive metric takes: ``examples`` when the suite sets
    it; all of them in a run whose split ``--limit`` cut (the split is that subset already); otherwise a
    seeded ``default``. Never more than n, so that asking for more than there are is asking for all."""
    if examples is None:
        examples = n if cut else default
    return min(examples, n)


def costly_subset(ctx: EvalContext, examples: int | None) -> np.ndarray:
    """Positions in ``ctx.split`` of the seeded ``examples`` (already resolved by ``Metric.resolve``)."""
    n = len(ctx.split)
    picked = stats.subset_indices(n, examples, ctx.seed)
    return np.arange(n) if picked is None else picked


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metric:
    """A family of measurements of one (model, task) pair.

    ``Params`` validates the parameters a suite may set (unknown names are rejected with the allowed
    ones). ``version`` is part of the cache key: bump it whenever the computation changes, so stored
    results from the old computation are not served as new ones. ``needs`` says what the metric
    uses: ``clean`` (the shared clean pass), ``predictions`` (top-1 predictions only, which an earlier
    run's stored outputs can supply without running the model), ``gradients``, ``device`` (results
    depend on the device, which then joins the cache key), ``country`` (results depend on the run's
    country, whose grid carbon intensity converts energy to carbon; it joins the cache key).
    ``modalities``: the kinds of task it measures; a suite that names it with another kind of task
    skips that pair (with the reason) instead of failing. ``task_params``: the parameters that only make
    sense for the suite's own tasks (column names); ``--task`` resets them to their defaults.
    ``measures``: each kind of record it returns, with its direction, category and slice keys, once.
    """

    name: ClassVar[str]
    category: ClassVar[str]
    description: ClassVar[str] = ""
    version: ClassVar[int] = 1
    needs: ClassVar[frozenset[str]] = frozenset({"clean"})
    modalities: ClassVar[frozenset[str]] = frozenset({"image", "tabular", "text"})  # tasks it can measure
    task_params: ClassVar[tuple[str, ...]] = ()  # parameters that name a task's columns or groups
    Params: ClassVar[type[BaseModel]] = NoParams
    measures: ClassVar[tuple[Measure, ...]] = ()  # what its records measure: harness.measures

    def check(self, task: Task, params: BaseModel) -> None:
        """Raise ValueError, naming what is wrong, when these parameters cannot work on ``task`` (checked
        when the run is planned, before anything runs)."""

    def default_examples(self, task: Task) -> int | None:
        """How many examples a metric with an ``examples`` parameter takes by default (None: all)."""
        return DEFAULT_EXAMPLES if "examples" in self.Params.model_fields else None

    def resolve(self, params: BaseModel, task: Task, *, n: int, cut: bool) -> BaseModel:
        """``params`` with every default that depends on the task or the run filled in (how many examples,
        which baseline model), as the job spec stores them: ``n`` examples are evaluated, ``cut`` says
        whether ``--limit`` cut the split to them."""
        default = self.default_examples(task)
        if default is None:
            return params
        return params.model_copy(update={"examples": resolve_examples(params.examples, n, cut, default)})

    def evaluated(self, params: BaseModel, n: int, seed: int) -> np.ndarray | None:
        """Positions in the evaluated split of the examples this job measures (resolved ``params``); None
        for all of them. Metrics with an ``examples`` parameter take that seeded subset."""
        examples = getattr(params, "examples", None)
        return None if examples is None else stats.subset_indices(n, examples, seed)

    def depends(self, params: BaseModel, task: Task) -> dict[str, Any]:
        """What else the figures are computed from (resolved ``params``): fingerprints of other models,
        the version of generated data. It joins the job spec, so changing any of it measures again."""
        return {}

    def passes(self, params: BaseModel, n: int) -> int | None:
        """At most how many model passes (forward, or forward and backward) the job makes on ``n``
        examples (resolved ``params``), for ``--dry-run``; None where the metric does not estimate it."""
        return None

    def compute(self, ctx: EvalContext, params: BaseModel) -> list[Record]:
        raise NotImplementedError
