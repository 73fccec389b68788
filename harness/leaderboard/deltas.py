"""How a variant's group gaps differ from its parent's, paired on the same examples.

For each grouping feature of the clean passes (as the exemplars use them), the gap is the largest
minus the smallest group rate: accuracy, and for two-class tasks the true-positive rate of the second
class too. The difference (variant gap - parent gap) gets a paired bootstrap interval: the examples'
joint table (group x positive x parent right x variant right) resampled as one multinomial, so both
models' rates move together in each resample, as they would with the examples themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness import stats
from harness.leaderboard.exemplars import groups_of


@dataclass(frozen=True)
class GapDelta:
    feature: str
    rate: str  # "accuracy" or "true-positive rate"
    parent: float  # the parent's gap
    variant: float  # the variant's gap
    delta: stats.Estimate  # variant - parent, nominal 95% percentile interval of the paired bootstrap


def _rates(t: np.ndarray, which: int, positive_only: bool) -> np.ndarray:
    """Per-group rate of model ``which`` (0 parent, 1 variant) from tables [..., G, 2, 2, 2]."""
    t = t[..., 1:, :, :] if positive_only else t
    right = t.sum(-3)  # over positive: [..., G, 2, 2]
    right = right.sum(-1)[..., 1] if which == 0 else right.sum(-2)[..., 1]
    total = t.sum((-3, -2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return right / total


def _gap(rates: np.ndarray) -> np.ndarray:
    return np.nanmax(rates, -1) - np.nanmin(rates, -1)


def gap_deltas(joined: pd.DataFrame, classes: tuple[str, ...] | None, *, resamples: int = 1000,
               seed: int = 0) -> list[GapDelta]:  # fmt: skip
    """The gap deltas of every grouping attribute (the class itself excepted)."""
    label = joined["label"].to_numpy().astype(int)
    binary = classes is not None and len(classes) == 2
    positive = (label == 1) if binary else np.zeros(len(label), dtype=bool)
    a, b = joined["correct_a"].astype(bool).to_numpy(), joined["correct_b"].astype(bool).to_numpy()
    out = []
    for feature, values in groups_of(joined, classes).items():
        if feature == "class":
            continue
        names = sorted(values.unique())
        g = values.map({v: i for i, v in enumerate(names)}).to_numpy()
        counts = np.zeros((len(names), 2, 2, 2), dtype=np.int64)
        np.add.at(counts, (g, positive.astype(int), a.astype(int), b.astype(int)), 1)
        kinds = [("accuracy", False)] + ([("true-positive rate", True)] if binary else [])
        resampled = stats.resample_counts(counts, resamples=resamples, seed=seed)
        for rate, positive_only in kinds:

            def delta(t: np.ndarray, p: bool = positive_only) -> np.ndarray:
                return _gap(_rates(t, 1, p)) - _gap(_rates(t, 0, p))

            estimate = stats.from_resampled(delta, counts, resampled)
            parent = float(_gap(_rates(counts[None], 0, positive_only))[0])
            variant = float(_gap(_rates(counts[None], 1, positive_only))[0])
            out.append(GapDelta(feature, rate, parent, variant, estimate))
    return out
