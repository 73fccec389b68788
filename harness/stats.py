"""Confidence intervals: one policy for every figure the harness reports (docs/metrics.md).

- **Proportions** (accuracy of a slice, robust accuracy, a rate): the Wilson score interval. It has
  close to 95% coverage down to a few successes and never collapses to zero width at 0 or 1 (the
  percentile bootstrap gave [0, 0] for a robust accuracy of 0).
- **Smooth statistics of per-example values** (Brier, NLL, a weighted accuracy, a latency
  percentile): the percentile bootstrap.
- **Gaps and ratios between groups** (fairness disparities, explanation-quality gaps): intervals built
  from one interval per pair of groups (``harness.disparity``: Newcombe's for differences of
  proportions, MOVER-R for ratios, Welch's for differences of means), each side with the multiplicity
  it needs; at least 95% at parity and at small groups, where bootstraps of ``max - min`` covered
  69-87%. The basic (reverse percentile) bootstrap remains for statistics without such a form.
- **Minima** over slices or shifts (the worst shift, the weakest group): a simultaneous interval, the
  smallest of Bonferroni-adjusted percentile intervals (``minimum``); at least 95%.
- **ECE**: its plug-in value is biased upward by at most a bound computed from the bins
  (``bias_bounded``); the interval reaches down by that bound; at least 95%. ``bias`` carries the
  bootstrap estimate of the bias, so that a record can state the bias-corrected value beside it.
- **Exact** figures (counts, parameters) and **ranges** (the min-max of repeated timings: a spread,
  not a confidence interval) say so in ``method``; boards never test ranges as if they were CIs.

Coverage of each 95% interval is tested by simulation (``tests/test_coverage.py``). Bootstrap draws
that are not finite (a resample with an empty group) are left out of the interval and counted in
``nonfinite``; records carry them as a flag. All resampling is seeded and vectorised:

- ``from_counts``: a statistic of a table of counts (a confusion matrix) resamples as
  Multinomial(n, counts/n) over the cells, exactly as resampling the n examples would;
- ``bootstrap``: anything else; the statistic receives a block of resampled index rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
Method = Literal["wilson", "percentile", "basic", "bonferroni", "bias-bounded", "newcombe", "mover", "welch", "range",
                 "exact"]  # fmt: skip
METHODS: dict[str, str] = {  # what each interval is, as the docs, boards and cards name it
    "wilson": "95% Wilson score interval",
    "percentile": "95% percentile bootstrap",
    "basic": "basic bootstrap (bias-reflecting; coverage not shown for gaps of small groups)",
    "bonferroni": "at least 95%: simultaneous (Bonferroni) bootstrap interval of a minimum",
    "bias-bounded": "at least 95%: bootstrap standard error widened downward by the largest possible bias",
    "newcombe": "at least 95%: the largest gap between groups, from pairwise Newcombe score intervals",
    "mover": "at least 95%: the smallest ratio between groups, from pairwise MOVER-R intervals",
    "welch": "at least 95%: the largest gap between group means, from pairwise Welch t intervals",
    "range": "min-max of repeated measurements (a spread, not a confidence interval)",
    "exact": "exact (no sampling error)",
}
CONFIDENCE_METHODS = (
    "wilson",
    "percentile",
    "basic",
    "bonferroni",
    "bias-bounded",
    "newcombe",
    "mover",
    "welch",
)  # those that claim coverage; fmt: skip


@dataclass(frozen=True)
class Estimate:
    value: float
    ci_low: float
    ci_high: float
    n: int
    method: Method = "exact"
    nonfinite: int = 0  # bootstrap draws that were not finite, left out of the interval
    bias: float = 0.0  # bootstrap estimate of the plug-in value's bias (mean of the draws - value)


def exact(value: float, n: int = 1) -> Estimate:
    """A number known without sampling error (a count, a parameter total): its interval is itself."""
    return Estimate(float(value), float(value), float(value), n, "exact")


def spread(value: float, values: np.ndarray) -> Estimate:
    """A value (the median of repeats) with the min-max of the repeats: a spread, not a CI."""
    values = np.asarray(values, dtype=float)
    return Estimate(float(value), float(values.min()), float(values.max()), len(values), "range")


def wilson(successes: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of ``successes`` out of ``n`` (Wilson, 1927)."""
    from scipy.stats import norm

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def interval(value: float, draws: np.ndarray, n: int, confidence: float = DEFAULT_CONFIDENCE,
             method: Method = "percentile", bounds: tuple[float, float] = (-np.inf, np.inf)) -> Estimate:  # fmt: skip
    """The interval of ``method`` from bootstrap ``draws`` of a statistic whose value is ``value``
    (for resampling schemes of a metric's own, such as a stratified bootstrap)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    finite = np.isfinite(draws)
    nonfinite = int((~finite).sum())
    draws = draws[finite]
    if draws.size == 0 or not np.isfinite(value):
        return Estimate(float(value), float("nan"), float("nan"), n, method, nonfinite)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    if method == "basic":  # reflected, and reaching the estimate itself (its coverage is tested with it)
        low, high = min(2 * value - high, value), max(2 * value - low, value)
    low, high = float(np.clip(low, *bounds)), float(np.clip(high, *bounds))
    return Estimate(float(value), low, high, n, method, nonfinite, float(draws.mean() - value))


def _check(n: int, resamples: int) -> None:
    if n <= 0:
        raise ValueError("cannot estimate a statistic from zero examples")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, not {resamples}")


def proportion(
    successes: np.ndarray,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> Estimate:
    """Mean of a 0/1 array (accuracy of a slice) with its Wilson score interval (no resampling:
    ``resamples`` and ``seed`` are accepted so that every estimator takes the same options)."""
    successes = np.asarray(successes, dtype=bool)
    _check(int(successes.size), resamples)
    return counted(int(successes.sum()), int(successes.size), confidence)


def counted(k: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> Estimate:
    """``k`` successes of ``n`` with the Wilson score interval."""
    _check(n, 1)
    low, high = wilson(k, n, confidence)
    low, high = (0.0 if k == 0 else low), (1.0 if k == n else high)  # exact at the ends, not 1e-17 off
    return Estimate(k / n, low, high, n, "wilson")


def resample_counts(counts: np.ndarray, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> np.ndarray:
    """Bootstrap resamples of a table of counts, ``[resamples, *counts.shape]``: a resample of the n
    examples behind the table is exactly Multinomial(n, counts / n) over its cells."""
    counts = np.asarray(counts, dtype=np.int64)
    n = int(counts.sum())
    _check(n, resamples)
    flat = np.random.default_rng(seed).multinomial(n, counts.ravel() / n, size=resamples)
    return flat.reshape(resamples, *counts.shape)


def from_resampled(
    statistic: Callable[[np.ndarray], np.ndarray],
    counts: np.ndarray,
    resampled: np.ndarray,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    method: Method = "percentile",
    bounds: tuple[float, float] = (-np.inf, np.inf),
) -> Estimate:
    """A statistic of a table of counts with its interval over resamples drawn once by
    ``resample_counts`` (so that many statistics of one table share the draws). Gaps, ratios and
    minima between groups take ``method="basic"`` and their range as ``bounds``."""
    counts = np.asarray(counts, dtype=np.int64)
    value = float(statistic(counts[None])[0])
    draws = np.asarray(statistic(resampled), dtype=float)
    return interval(value, draws, int(counts.sum()), confidence, method, bounds)


def from_counts(
    statistic: Callable[[np.ndarray], np.ndarray],
    counts: np.ndarray,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    method: Method = "percentile",
    bounds: tuple[float, float] = (-np.inf, np.inf),
) -> Estimate:
    """A statistic of a table of counts; ``statistic`` maps ``[..., *counts.shape]`` to ``[...]``."""
    resampled = resample_counts(counts, resamples=resamples, seed=seed)
    return from_resampled(statistic, counts, resampled, confidence=confidence, method=method, bounds=bounds)


def draws(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    block: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """The statistic on the data and on ``resamples`` bootstrap resamples of its n examples:
    ``statistic`` maps index rows ``[B, n]`` to ``[B, ...]``. Rows are drawn in blocks so memory stays
    at ``block * n`` indices whatever ``resamples`` is."""
    _check(n, resamples)
    value = np.asarray(statistic(np.arange(n)[None]), dtype=float)[0]
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        out.append(np.asarray(statistic(rng.integers(0, n, size=(size, n), dtype=np.int32)), dtype=float))
    return value, np.concatenate(out)


def bootstrap(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    block: int = 200,
    method: Method = "percentile",
    bounds: tuple[float, float] = (-np.inf, np.inf),
) -> Estimate:
    """Any statistic of n examples; ``statistic`` maps index rows ``[B, n]`` to values ``[B]``.
    Gaps and ratios take ``method="basic"`` and their range as ``bounds``."""
    value, drawn = draws(statistic, n, resamples=resamples, seed=seed, block=block)
    return interval(float(value), drawn, n, confidence, method, bounds)


def minimum(
    values: np.ndarray, drawn: np.ndarray, n: int, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[int, Estimate]:
    """The smallest of k statistics of the same n examples (the worst of several shifts, the weakest
    group), from their values ``[k]`` and joint bootstrap draws ``[B, k]``: which is smallest, and the
    minimum with a simultaneous interval, ``[min_k low_k, min_k high_k]`` of percentile intervals at
    level ``1 - alpha / k`` (Bonferroni). It covers the true minimum with probability at least
    ``confidence`` whichever statistic is truly smallest, where the interval of the smallest estimate
    alone would not (it was picked for being low: the winner's curse)."""
    values, drawn = np.asarray(values, dtype=float), np.asarray(drawn, dtype=float)
    k = values.shape[-1]
    alpha = (1 - confidence) / (2 * k)
    finite = np.isfinite(drawn)
    nonfinite = int((~finite.all(1)).sum())
    low = np.array([np.quantile(drawn[finite[:, j], j], alpha) for j in range(k)])
    high = np.array([np.quantile(drawn[finite[:, j], j], 1 - alpha) for j in range(k)])
    which = int(np.nanargmin(values))
    worst = float(values[which])
    bias = float(np.nanmean(np.nanmin(drawn, 1)) - worst)
    return which, Estimate(worst, float(min(low.min(), worst)), float(high.min()), n, "bonferroni", nonfinite, bias)


def bias_bounded(value: float, drawn: np.ndarray, n: int, max_bias: float,
                 confidence: float = DEFAULT_CONFIDENCE) -> Estimate:  # fmt: skip
    """An interval for a statistic whose plug-in value is biased upward by at most ``max_bias`` (and never
    downward), such as the binned ECE (a sum of absolute gaps: each ``|gap|`` is pushed up by its noise,
    most when the true gap is 0): ``[value - max_bias - z se, value + z se]`` with the bootstrap
    standard error, at least 0. Each side fails with probability at most ``(1 - confidence) / 2``
    whatever the truth, so the coverage is at least ``confidence`` (more where the true bias is below its
    bound, which is when the model is clearly miscalibrated)."""
    from scipy.stats import norm

    finite = np.isfinite(drawn)
    se = float(np.std(drawn[finite], ddof=1)) if finite.sum() > 1 else float("nan")
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    low, high = max(0.0, value - max_bias - z * se), value + z * se
    bias = float(drawn[finite].mean() - value)
    return Estimate(float(value), low, high, n, "bias-bounded", int((~finite).sum()), bias)


def mean(values: np.ndarray, **options: Any) -> Estimate:
    """The mean of per-example values with its bootstrap interval (``options`` as for ``bootstrap``)."""
    values = np.asarray(values, dtype=float)
    return bootstrap(lambda rows: values[rows].mean(1), len(values), **options)


def subset_indices(n: int, limit: int | None, seed: int) -> np.ndarray | None:
    """A seeded subset of ``limit`` of the n examples (sorted), or None for all of them."""
    if limit is None or limit >= n:
        return None
    return np.sort(np.random.default_rng(seed).permutation(n)[:limit])
