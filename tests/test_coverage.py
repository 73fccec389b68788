"""Coverage of every interval the harness reports, by simulation with a known truth.

Each case draws at least 1,000 data sets, computes the interval exactly as the metric does, and counts
how often it holds the true value. An interval claimed as 95% must cover 93-97% of the time (the
binomial noise of 1,000 trials is +-1.4 points); those documented as conservative ("at least 95%":
the ECE's bias-bounded interval, the simultaneous interval of a minimum, a proportion at 0) must
cover at least 94% (the bound less the simulation noise). Wilson's interval is also checked against
its exact coverage (binomial sums) and against scipy's implementation.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom, binomtest

from harness import stats
from harness.metrics.calibration import ece_statistic, max_bias
from harness.metrics.fairness import gap

TRIALS = 1000
CLAIMED = (0.93, 0.97)
CONSERVATIVE = 0.94


def coverage(interval, truth: float, trials: int = TRIALS) -> float:
    hits = 0
    for trial in range(trials):
        estimate = interval(np.random.default_rng(1000 + trial), trial)
        hits += estimate.ci_low <= truth <= estimate.ci_high
    return hits / trials


def test_wilson_matches_scipy_and_its_exact_coverage():
    for k, n in ((0, 20), (3, 10), (50, 100), (999, 1000)):
        low, high = stats.wilson(k, n)
        ci = binomtest(k, n).proportion_ci(method="wilson")
        assert (low, high) == pytest.approx((ci.low, ci.high), abs=1e-12)
    for p, n in ((0.01, 1000), (0.5, 1000), (0.5, 100)):  # exact coverage: the binomial sum
        exact = sum(binom.pmf(k, n, p) for k in range(n + 1) if stats.wilson(k, n)[0] <= p <= stats.wilson(k, n)[1])
        assert CLAIMED[0] <= exact <= CLAIMED[1], (p, n, exact)


@pytest.mark.parametrize("p", [0.01, 0.5])
def test_proportion_intervals_cover_95_percent(p):
    n = 1000
    found = coverage(lambda rng, _: stats.proportion(rng.random(n) < p), p, trials=2000)
    assert CLAIMED[0] <= found <= CLAIMED[1], found


def test_proportion_at_zero_always_covers_and_is_never_zero_width():
    """The documented bound at the boundary: an interval of 0 successes is [0, z^2 / (n + z^2)]."""
    found = coverage(lambda rng, _: stats.proportion(np.zeros(1000, dtype=bool)), 0.0)
    assert found == 1.0
    estimate = stats.proportion(np.zeros(1000, dtype=bool))
    assert estimate.ci_low == 0 and estimate.ci_high > 0.003
    full = stats.proportion(np.ones(1000, dtype=bool))
    assert full.ci_high == 1 and full.ci_low < 0.997


@pytest.mark.slow
def test_percentile_bootstrap_of_a_mean_covers_95_percent():
    """A Brier score: per-example squared errors of a model with skewed, bounded values."""
    n = 500

    def interval(rng, trial):
        return stats.mean(rng.beta(0.5, 3.0, n) * 2, seed=trial)

    found = coverage(interval, 2 * 0.5 / 3.5)
    assert CLAIMED[0] <= found <= CLAIMED[1], found


def ece_interval(shift: float, n: int = 1000):
    """A binary classifier whose confidence is uniform on (0.5, 1] and whose accuracy is confidence -
    shift: its true binned ECE is exactly ``shift`` (0: perfectly calibrated)."""

    def interval(rng, trial):
        confidence = rng.uniform(0.5, 1, n)
        correct = rng.random(n) < confidence - shift
        value, drawn = stats.draws(ece_statistic(confidence, correct, 15), n, seed=trial)
        return stats.bias_bounded(float(value), drawn, n, max_bias(confidence, correct, 15))

    return interval


@pytest.mark.slow
@pytest.mark.parametrize("shift", [0.0, 0.1])
def test_ece_interval_covers_the_true_ece_at_least_95_percent(shift):
    found = coverage(ece_interval(shift), shift)
    assert found >= CONSERVATIVE, found


def test_ece_interval_reaches_zero_for_a_calibrated_model_and_the_debiased_value_is_smaller():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1, 2000)
    correct = rng.random(2000) < confidence
    value, drawn = stats.draws(ece_statistic(confidence, correct, 15), 2000)
    estimate = stats.bias_bounded(float(value), drawn, 2000, max_bias(confidence, correct, 15))
    assert estimate.ci_low == 0 < estimate.value < estimate.ci_high
    assert estimate.bias > 0  # resampling a calibrated model's ECE inflates it: the plug-in's bias


def gap_interval(accuracy_a: float, accuracy_b: float, n: int = 500):
    """Two groups of n examples; the fairness metric's resampling of the count table and its gap."""

    def interval(rng, trial):
        k = rng.binomial(n, [accuracy_a, accuracy_b])
        counts = np.stack([k, n - k], 1)  # [group, correct/incorrect]

        def statistic(t):
            return gap(t[..., 0] / t.sum(-1))

        return stats.from_counts(statistic, counts, seed=trial, method="basic", bounds=(0, 1))

    return interval


@pytest.mark.parametrize(("a", "b"), [(0.8, 0.8), (0.8, 0.7)])
def test_gap_between_groups_covers_95_percent(a, b):
    found = coverage(gap_interval(a, b), abs(a - b), trials=4000)  # cheap: 4,000 trials, +-0.7 points
    assert CLAIMED[0] <= found <= CLAIMED[1], found


@pytest.mark.slow
def test_minimum_over_shifts_covers_the_true_worst_case_at_least_95_percent():
    """Five shifts measured on the same examples, the worst two close together (a winner's curse)."""
    accuracies = np.array([0.80, 0.81, 0.82, 0.85, 0.90])
    n = 1000

    def interval(rng, trial):
        correct = (rng.random((n, len(accuracies))) < accuracies).astype(float)
        values, drawn = stats.draws(lambda rows: correct[rows].mean(1), n, seed=trial)
        return stats.minimum(values, drawn, n)[1]

    found = coverage(interval, 0.80)
    assert found >= CONSERVATIVE, found


def test_the_minimums_own_interval_would_undercover():
    """Why the minimum is bootstrapped as a minimum: the Wilson interval of whichever shift came out
    lowest covers the true worst case less often than 93% on the same design."""
    accuracies = np.array([0.80, 0.80, 0.80, 0.80, 0.80])
    n = 1000

    def naive(rng, _):
        correct = rng.random((n, len(accuracies))) < accuracies
        return stats.proportion(correct[:, np.argmin(correct.mean(0))])

    assert coverage(naive, 0.80) < CLAIMED[0]


def test_nonfinite_draws_are_counted_not_dropped_silently():
    counts = np.array([[1, 0], [50, 50]])  # a group of one example: many resamples leave it empty

    def statistic(t):
        with np.errstate(invalid="ignore", divide="ignore"):
            return gap(t[..., 0] / t.sum(-1))

    estimate = stats.from_counts(statistic, counts, method="basic", bounds=(0, 1))
    assert estimate.nonfinite == 0  # nanmax/nanmin skip an empty group: the gap stays defined
    with np.errstate(invalid="ignore"):
        ratio = stats.from_counts(lambda t: t[..., 0, 0] / t[..., 0, :].sum(-1), counts)
    assert ratio.nonfinite > 100  # P(group of one left out) = (100/101)^101, about 37%


@pytest.mark.slow
def test_stratified_auroc_interval_covers_95_percent():
    """Scores N(1, 1) in distribution and N(0, 1) out of it: the true AUROC is Phi(1 / sqrt 2); the
    ood metric's stratified bootstrap (each side resampled on its own)."""
    from scipy.stats import norm

    from harness.metrics.ood import stratified

    def interval(rng, trial):
        return stratified(rng.normal(1, 1, 150), rng.normal(0, 1, 100), seed=trial)["auroc"]

    found = coverage(interval, float(norm.cdf(1 / np.sqrt(2))))
    assert CLAIMED[0] <= found <= CLAIMED[1], found


@pytest.mark.slow
@pytest.mark.parametrize("figure, truth", [("aurc", 0.25), ("risk_at_90", 0.45)])
def test_selective_intervals_cover_95_percent(figure, truth):
    """Confidence uniform on (0, 1) and P(wrong | c) = 1 - c: keeping coverage q keeps c >= 1 - q, whose
    risk is q / 2, so AURC = 1/4 and the risk at 90% coverage is 0.45; the selective metric's bootstrap."""
    from harness.metrics.curves import risk_coverage

    n = 400

    def interval(rng, trial):
        confidence = rng.random(n)
        wrong = rng.random(n) < 1 - confidence
        value, drawn = stats.draws(lambda rows: risk_coverage(confidence, wrong, rows)[figure], n, seed=trial)
        return stats.interval(float(value), drawn, n, bounds=(0.0, 1.0))

    found = coverage(interval, truth)
    assert CLAIMED[0] <= found <= CLAIMED[1], found
