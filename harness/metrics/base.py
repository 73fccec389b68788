"""The ``Metric`` interface."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from harness import stats

if TYPE_CHECKING:
    from harness.context import EvalContext
    from harness.records import Record
    from harness.tasks.base import Task


DEFAULT_EXAMPLES = 1000  # what the attacks and corruptions evaluate unless told otherwise


def costly_subset(ctx: EvalContext, examples: int | None) -> np.ndarray:
    """Indices into ``ctx.split`` of the examples an expensive metric evaluates: ``examples`` when the
    suite sets it; otherwise all of them in a run cut by ``--limit`` (the split is that subset already);
    otherwise a seeded ``DEFAULT_EXAMPLES``."""
    n = len(ctx.split)
    if examples is None:
        examples = n if ctx.provenance.get("limit") else DEFAULT_EXAMPLES
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
    """

    name: ClassVar[str]
    category: ClassVar[str]
    description: ClassVar[str] = ""
    version: ClassVar[int] = 1
    needs: ClassVar[frozenset[str]] = frozenset({"clean"})
    modalities: ClassVar[frozenset[str]] = frozenset({"image", "tabular", "text"})  # tasks it can measure
    task_params: ClassVar[tuple[str, ...]] = ()  # parameters that name a task's columns or groups
    Params: ClassVar[type[BaseModel]] = NoParams

    def check(self, task: Task, params: BaseModel) -> None:
        """Raise ValueError, naming what is wrong, when these parameters cannot work on ``task`` (checked
        when the run is planned, before anything runs)."""

    def compute(self, ctx: EvalContext, params: BaseModel) -> list[Record]:
        raise NotImplementedError
