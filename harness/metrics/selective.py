"""Selective prediction: what abstaining on the least confident examples buys, from the model's
confidence (the maximum softmax probability of the clean pass; examples with non-finite logits are
least confident and wrong). Figures (``harness.metrics.curves``): AURC, E-AURC and AUGRC, the
selective risk at 80, 90 and 95% coverage, the coverage at 1 and 5% risk, each with a percentile
bootstrap interval over the examples; and, per group of each sensitive attribute, the share of the
group abstained on at 90% coverage (Wilson intervals): does abstention fall more on one group?"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from harness import stats
from harness.figures import risk_coverage_curve
from harness.measures import Measure
from harness.metrics.base import Metric
from harness.metrics.curves import SELECTIVE_COVERAGES, SELECTIVE_RISKS, risk_coverage
from harness.registry import metrics

if TYPE_CHECKING:
    from harness.context import EvalContext
    from harness.records import Record


class SelectiveParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    group_coverage: float = Field(0.9, gt=0, le=1, description="the coverage at which abstention is split by group")
    max_groups: int = Field(20, ge=2, description="attributes with more distinct values are not split by")


def confidence_and_errors(ctx: EvalContext) -> tuple[np.ndarray, np.ndarray]:
    clean = ctx.clean
    return np.nan_to_num(clean.confidence, nan=-1.0), ~clean.correct


@metrics.register("selective", "selective prediction: risk-coverage (AURC, E-AURC, AUGRC), risk at coverage")
class Selective(Metric):
    name = "selective"
    category = "calibration"
    Params = SelectiveParams
    measures = (
        Measure("selective.aurc", "lower", "calibration", key_slices={}),
        Measure("selective.e_aurc", "lower", "calibration"),
        Measure("selective.augrc", "lower", "calibration"),
        Measure("selective.risk", "lower", "calibration", ("coverage",), percent=True, key_slices={"coverage": "0.9"}),
        Measure("selective.coverage", "higher", "calibration", ("risk",), percent=True),
        Measure("selective.abstention", "lower", "calibration", ("coverage", "feature", "group"), percent=True),
    )

    def compute(self, ctx: EvalContext, params: BaseModel) -> list[Record]:
        assert isinstance(params, SelectiveParams)
        confidence, wrong = confidence_and_errors(ctx)
        n = len(confidence)
        if n == 0:
            raise ValueError("selective: no examples")
        names = ["aurc", "e_aurc", "augrc", *(f"risk_at_{round(c * 100)}" for c in SELECTIVE_COVERAGES),
                 *(f"coverage_at_{round(r * 100)}" for r in SELECTIVE_RISKS)]  # fmt: skip

        def statistic(rows: np.ndarray) -> np.ndarray:
            found = risk_coverage(confidence, wrong, rows)
            return np.stack([found[k] for k in names], 1)

        value, drawn = stats.draws(statistic, n, **ctx.bootstrap_options)
        estimate = {k: stats.interval(float(value[i]), drawn[:, i], n, bounds=(0.0, 1.0)) for i, k in enumerate(names)}
        out = [ctx.record(f"selective.{k}", estimate[k]) for k in ("aurc", "e_aurc", "augrc")]
        out += [ctx.record("selective.risk", estimate[f"risk_at_{round(c * 100)}"], slice={"coverage": str(c)})
                for c in SELECTIVE_COVERAGES]  # fmt: skip
        out += [ctx.record("selective.coverage", estimate[f"coverage_at_{round(r * 100)}"], slice={"risk": str(r)})
                for r in SELECTIVE_RISKS]  # fmt: skip
        ctx.figures["risk-coverage"] = risk_coverage_curve(confidence, wrong, f"{ctx.model.name} on {ctx.task.name}")
        threshold = np.sort(confidence)[::-1][int(np.ceil(params.group_coverage * n)) - 1]
        abstained = confidence < threshold
        attributes = ctx.split.attributes
        for feature in ctx.task.sensitive:
            column = attributes[feature].astype(str)
            if column.nunique() > params.max_groups:
                continue
            for group in sorted(column.unique()):
                inside = (column == group).to_numpy()
                out.append(ctx.record("selective.abstention", stats.proportion(abstained[inside]),
                                      slice={"coverage": str(params.group_coverage), "feature": feature,
                                             "group": group}))  # fmt: skip
        return out
