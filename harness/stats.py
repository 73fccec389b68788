"""Bootstrap confidence intervals.

Every number the harness reports carries a 95% percentile-bootstrap interval and its sample count.
The three entry points are the same non-parametric bootstrap (resample the n examples with
replacement, recompute the statistic, take percentiles), computed in the cheapest exact way the
statistic allows:

- ``proportion``: the number of successes in a resample of n Bernoulli outcomes with k successes is
  exactly Binomial(n, k/n), so the resamples are drawn from that distribution directly;
- ``from_counts``: a statistic of a table of counts (a confusion matrix) resamples as
  Multinomial(n, counts/n) over the cells, exactly;
- ``bootstrap``: anything else; the statistic receives a block of resampled index rows.

All three are seeded and vectorised; none loops in Python over resamples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    value: float
    ci_low: float
    ci_high: float
    n: int


def exact(value: float, n: int = 1) -> Estimate:
    """A number known without sampling error (a count, a parameter total): its interval is itself."""
    return Estimate(float(value), float(value), float(value), n)


def _interval(value: float, draws: np.ndarray, n: int, confidence: float, contain: bool = False) -> Estimate:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return Estimate(float(value), float("nan"), float("nan"), n)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    if contain and np.isfinite(value):
        low, high = min(low, value), max(high, value)
    return Estimate(float(value), float(low), float(high), n)


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
    """Mean of a 0/1 array (accuracy of a slice) with its bootstrap interval."""
    successes = np.asarray(successes, dtype=bool)
    n = int(successes.size)
    _check(n, resamples)
    p = float(successes.mean())
    draws = np.random.default_rng(seed).binomial(n, p, size=resamples) / n
    return _interval(p, draws, n, confidence)


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
    contain: bool = False,
) -> Estimate:
    """A statistic of a table of counts with its interval over resamples drawn once by
    ``resample_counts`` (so that many statistics of one table share the draws). ``contain`` widens the
    interval to include the estimate: the percentile interval of a gap between groups (max - min) lies
    wholly above the estimate when the groups are alike, since resampling adds noise that only widens
    gaps."""
    counts = np.asarray(counts, dtype=np.int64)
    value = float(statistic(counts[None])[0])
    draws = np.asarray(statistic(resampled), dtype=float)
    return _interval(value, draws, int(counts.sum()), confidence, contain)


def from_counts(
    statistic: Callable[[np.ndarray], np.ndarray],
    counts: np.ndarray,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    contain: bool = False,
) -> Estimate:
    """A statistic of a table of counts; ``statistic`` maps ``[..., *counts.shape]`` to ``[...]``."""
    resampled = resample_counts(counts, resamples=resamples, seed=seed)
    return from_resampled(statistic, counts, resampled, confidence=confidence, contain=contain)


def bootstrap(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    block: int = 200,
) -> Estimate:
    """Any statistic of n examples; ``statistic`` maps index rows ``[B, n]`` to values ``[B]``.

    Rows are drawn in blocks so memory stays at ``block * n`` indices whatever ``resamples`` is.
    """
    _check(n, resamples)
    value = float(statistic(np.arange(n)[None])[0])
    rng = np.random.default_rng(seed)
    draws = []
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        draws.append(np.asarray(statistic(rng.integers(0, n, size=(size, n), dtype=np.int32)), dtype=float))
    return _interval(value, np.concatenate(draws), n, confidence)


def mean(values: np.ndarray, **options: Any) -> Estimate:
    """The mean of per-example values with its bootstrap interval (``options`` as for ``bootstrap``)."""
    values = np.asarray(values, dtype=float)
    return bootstrap(lambda rows: values[rows].mean(1), len(values), **options)


def subset_indices(n: int, limit: int | None, seed: int) -> np.ndarray | None:
    """A seeded subset of ``limit`` of the n examples (sorted), or None for all of them."""
    if limit is None or limit >= n:
        return None
    return np.sort(np.random.default_rng(seed).permutation(n)[:limit])
