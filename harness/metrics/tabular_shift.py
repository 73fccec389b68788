"""Accuracy of tabular models under distribution shift: numeric noise, missing values, and test
distributions reweighted toward each sensitive group; the worst case over them."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from harness import stats
from harness.measures import Measure
from harness.metrics.base import Metric
from harness.registry import metrics

if TYPE_CHECKING:
    from harness.context import EvalContext
    from harness.records import Record
    from harness.tasks.base import Task

SPREAD_SPLIT = "train"  # the split whose feature standard deviations are the noise's unit


class TabularShiftParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    noise_scales: tuple[float, ...] = Field((0.1, 0.25, 0.5, 1.0), description="noise std in feature stds")
    missing_rates: tuple[float, ...] = Field((0.1, 0.25, 0.5), description="share of values blanked")
    subpopulation_share: float = Field(0.8, gt=0, lt=1, description="share given to a group when reweighting")


def shift_seed(task: str, shift: str, seed: int) -> int:
    """The same for every model, different for every shift."""
    return zlib.crc32(f"{task}/{shift}/{seed}".encode())


@metrics.register("tabular-shift", "accuracy under numeric noise, missing values and subpopulation shift")
class TabularShift(Metric):
    name = "tabular-shift"
    category = "robustness"
    measures = (
        Measure("tabular_shift.accuracy", "higher", "robustness", ("shift",), percent=True),
        Measure("tabular_shift.worst_accuracy", "higher", "robustness", ("shift",), percent=True),
    )
    modalities = frozenset({"tabular"})
    Params: type[BaseModel] = TabularShiftParams

    def depends(self, params: BaseModel, task: Task) -> dict[str, object]:
        """The noise is in units of each feature's spread on the training split: other training data
        (a held-out tenth moved out of it, say) is another figure."""
        return {"noise_unit_from": task.load(SPREAD_SPLIT).fingerprint}

    def compute(self, ctx: EvalContext, params: BaseModel) -> list[Record]:
        from harness.attacks.tabular import gaussian_noise, missing_values, subpopulation_weights

        assert isinstance(params, TabularShiftParams)
        schema = getattr(ctx.task, "schema", None)
        if ctx.task.modality != "tabular" or schema is None:
            raise ValueError(
                f"tabular-shift needs a tabular task with a schema; {ctx.task.name} is {ctx.task.modality}"
            )
        inputs = ctx.split.inputs.numpy()
        labels = ctx.clean.labels
        train = ctx.task.load(SPREAD_SPLIT).inputs.numpy()[:, : len(schema.numeric)]
        stds = np.nanstd(train.astype(np.float64), axis=0)
        opts = ctx.bootstrap_options

        # each shift as a statistic of resampled example rows [B, n] -> [B], so the worst case can be
        # bootstrapped jointly (the shifts are measured on the same examples)
        shifts: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        results: list[tuple[str, stats.Estimate]] = [("none", stats.proportion(ctx.clean.correct, **opts))]
        perturbed = {f"noise@{scale:g}": gaussian_noise(inputs, schema, stds, scale,
                                                        shift_seed(ctx.task.name, f"noise{scale}", ctx.seed))
                     for scale in params.noise_scales}  # fmt: skip
        perturbed |= {f"missing@{rate:g}": missing_values(inputs, rate, shift_seed(ctx.task.name, f"missing{rate}",
                                                                                     ctx.seed))
                      for rate in params.missing_rates}  # fmt: skip
        for name, shifted in perturbed.items():
            correct = (ctx.predict(shifted) == labels).astype(float)
            shifts[name] = lambda rows, c=correct: c[rows].mean(1)
            results.append((name, stats.proportion(correct.astype(bool), **opts)))
        clean = ctx.clean.correct.astype(float)
        for attribute in ctx.task.sensitive:
            groups = ctx.split.attributes[attribute].to_numpy()
            for group in sorted(set(groups)):
                weights = subpopulation_weights(groups, group, params.subpopulation_share)

                def weighted(rows: np.ndarray, w: np.ndarray = weights) -> np.ndarray:
                    return (clean[rows] * w[rows]).sum(1) / w[rows].sum(1)

                name = f"subpopulation:{attribute}={group}"
                shifts[name] = weighted
                results.append((name, stats.bootstrap(weighted, len(labels), **opts)))
        statistics = list(shifts.values())
        values, drawn = stats.draws(lambda rows: np.stack([f(rows) for f in statistics], 1), len(labels), **opts)
        which, worst = stats.minimum(values, drawn, len(labels))
        worst_name = list(shifts)[which]
        out = [ctx.record("tabular_shift.accuracy", estimate, slice=f"shift={name}") for name, estimate in results]
        out.append(ctx.record("tabular_shift.worst_accuracy", worst, slice=f"shift={worst_name}"))
        return out
