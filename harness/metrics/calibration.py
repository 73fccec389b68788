"""Calibration: expected calibration error, Brier score and negative log-likelihood, each with a 95% CI.

Definitions (docs/metrics.md): with confidence c_i = max_k p_ik and correctness a_i,
ECE = sum_b |B_b| / n * |mean_{i in B_b} a_i - mean_{i in B_b} c_i| over equal-width bins
((0, 1/M], (1/M, 2/M], ...); Brier = mean_i sum_k (p_ik - y_ik)^2 (Brier, 1950, over all classes);
NLL = -mean_i log p_{i, y_i}. Examples with non-finite logits are left out of all three and the
records are flagged with their count.

The plug-in ECE is biased upward (each bin's |gap| adds its sampling noise): a perfectly calibrated
model scores above 0. Its interval (``stats.bias_bounded``) reaches down by the largest bias the
binning can have, so that it covers the true ECE, 0 included, at least 95% of the time;
``calibration.ece_debiased`` is the bootstrap bias-reduced value (the plug-in minus the mean excess
of the resampled ECEs, at least 0): it removes part of the bias, not all (a calibrated model at
n = 1,000 still averages 0.017 against the plug-in's 0.029; tested). Both biases are in the records'
params.
"""

from __future__ import annotations

from dataclasses import replace
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


def bin_index(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Bin of each confidence for equal-width bins closed on the right: (0, 1/M] is bin 0."""
    return np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)


def ece_statistic(confidence: np.ndarray, correct: np.ndarray, bins: int):
    """A bootstrap statistic: index rows [B, n] -> ECE of each resample [B]."""
    index = bin_index(confidence, bins)

    def statistic(rows: np.ndarray) -> np.ndarray:
        b, n = rows.shape
        flat = (index[rows] + bins * np.arange(b)[:, None]).ravel()
        conf = np.bincount(flat, weights=confidence[rows].ravel(), minlength=b * bins)
        acc = np.bincount(flat, weights=correct[rows].ravel().astype(float), minlength=b * bins)
        return np.abs(acc - conf).reshape(b, bins).sum(1) / n

    return statistic


def max_bias(confidence: np.ndarray, correct: np.ndarray, bins: int) -> float:
    """The largest upward bias the plug-in ECE can have here: each bin's ``|mean gap|`` overstates the
    true ``|gap|`` by at most ``E|N(0, s^2)| = s sqrt(2 / pi)`` (reached when the true gap is 0), with
    ``s`` the standard error of the bin's mean gap; weighted by the bins' shares. A bin of one example
    takes the largest standard deviation a gap in [-1, 1] can have, 1."""
    index = bin_index(confidence, bins)
    gaps = confidence - correct.astype(float)
    total = 0.0
    for b in np.unique(index):
        inside = gaps[index == b]
        sd = float(inside.std(ddof=1)) if len(inside) > 1 else 1.0
        total += len(inside) / len(gaps) * sd / np.sqrt(len(inside)) * np.sqrt(2 / np.pi)
    return total


class CalibrationParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    bins: int = Field(15, ge=2, le=1000, description="equal-width confidence bins for ECE")


@metrics.register("calibration", "expected calibration error (15 equal-width bins), Brier score, NLL")
class Calibration(Metric):
    name = "calibration"
    category = "calibration"
    measures = (
        Measure("calibration.ece", "lower", "calibration", percent=True),
        Measure("calibration.ece_debiased", "lower", "calibration", percent=True),
        Measure("calibration.brier", "lower", "calibration"),
        Measure("calibration.nll", "lower", "calibration"),
    )
    Params: type[BaseModel] = CalibrationParams

    def compute(self, ctx: EvalContext, params: BaseModel) -> list[Record]:
        assert isinstance(params, CalibrationParams)
        clean = ctx.clean
        keep = clean.finite
        if not keep.any():
            raise ValueError("every example has non-finite logits: calibration cannot be measured")
        probs, labels = clean.probs[keep], clean.labels[keep]
        confidence, correct = probs.max(1), clean.correct[keep]
        onehot = np.eye(probs.shape[1])[labels]
        brier = ((probs - onehot) ** 2).sum(1)
        nll = -clean.log_probs[keep][np.arange(len(labels)), labels]
        n, opts = len(labels), ctx.bootstrap_options
        value, drawn = stats.draws(ece_statistic(confidence, correct, params.bins), n, **opts)
        largest = float(max_bias(confidence, correct, params.bins))
        ece = stats.bias_bounded(float(value), drawn, n, largest)
        debiased = replace(ece, value=max(0.0, ece.value - ece.bias))
        settings = {"bins": params.bins, "binning_bias": ece.bias, "largest_binning_bias": largest}
        return [
            ctx.record("calibration.ece", ece, params=settings),
            ctx.record("calibration.ece_debiased", debiased, params=settings),
            ctx.record("calibration.brier", stats.mean(brier, **opts)),
            ctx.record("calibration.nll", stats.mean(nll, **opts)),
        ]  # fmt: skip
