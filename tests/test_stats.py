"""The fast bootstrap paths must match the plain resample-and-recompute bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from harness import stats


def naive_bootstrap(values: np.ndarray, fn, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = len(values)
    return np.array([fn(values[rng.integers(0, n, n)]) for _ in range(resamples)])


def test_proportion_matches_resampling():
    rng = np.random.default_rng(0)
    successes = rng.random(800) < 0.83
    est = stats.proportion(successes, resamples=4000, seed=1)
    draws = naive_bootstrap(successes.astype(float), np.mean, 4000, 2)
    low, high = np.quantile(draws, [0.025, 0.975])
    assert est.value == pytest.approx(successes.mean())
    assert est.n == 800
    assert est.ci_low == pytest.approx(low, abs=0.006)
    assert est.ci_high == pytest.approx(high, abs=0.006)


def test_from_counts_matches_resampling():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 600)
    preds = np.where(rng.random(600) < 0.7, labels, rng.integers(0, 3, 600))
    cells = labels * 3 + preds
    counts = np.bincount(cells, minlength=9).reshape(3, 3)

    def recall_mean(cm):
        return (np.diagonal(cm, axis1=-2, axis2=-1) / cm.sum(-1)).mean(-1)

    est = stats.from_counts(recall_mean, counts, resamples=3000, seed=1)
    draws = naive_bootstrap(cells, lambda c: recall_mean(np.bincount(c, minlength=9).reshape(3, 3)), 3000, 2)
    assert est.value == pytest.approx(recall_mean(counts[None])[0])
    assert est.ci_low == pytest.approx(np.quantile(draws, 0.025), abs=0.008)
    assert est.ci_high == pytest.approx(np.quantile(draws, 0.975), abs=0.008)


def test_generic_bootstrap_matches_resampling_and_is_seeded():
    values = np.random.default_rng(3).exponential(size=500)
    stat = lambda rows: np.median(values[rows], axis=1)  # noqa: E731
    a = stats.bootstrap(stat, 500, resamples=2000, seed=5, block=300)
    b = stats.bootstrap(stat, 500, resamples=2000, seed=5, block=300)
    assert a == b
    draws = naive_bootstrap(values, np.median, 2000, 9)
    assert a.value == pytest.approx(np.median(values))
    assert a.ci_low == pytest.approx(np.quantile(draws, 0.025), rel=0.05)
    assert a.ci_high == pytest.approx(np.quantile(draws, 0.975), rel=0.05)
    assert a.ci_low < a.value < a.ci_high


def test_interval_narrows_with_more_data():
    rng = np.random.default_rng(0)
    small = stats.proportion(rng.random(100) < 0.5, seed=0)
    large = stats.proportion(rng.random(10_000) < 0.5, seed=0)
    assert (large.ci_high - large.ci_low) < (small.ci_high - small.ci_low) / 5


@pytest.mark.parametrize("bad", [dict(resamples=0), dict(confidence=1.5)])
def test_rejects_bad_settings(bad):
    with pytest.raises(ValueError):
        stats.proportion(np.ones(10, bool), **bad)


def test_rejects_empty():
    with pytest.raises(ValueError, match="zero examples"):
        stats.proportion(np.array([], bool))
