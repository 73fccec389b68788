"""Coverage of every interval the harness reports, by simulation with a known truth.

Each case draws at least 1,000 data sets, computes the interval exactly as the metric does, and counts
how often it holds the true value. An interval claimed as 95% must cover 93-97% of the time (the
binomial noise of 1,000 trials is +-1.4 points); those documented as conservative ("at least 95%":
the ECE's bias-bounded interval, the simultaneous interval of a minimum, a proportion at 0, the gaps
and ratios between groups) must cover at least 94% (the bound less the simulation noise). Wilson's
interval is also checked against its exact coverage (binomial sums, over a grid of p at n = 30, 100
and 1,000: the band docs/metrics.md states) and against scipy's implementation.
"""

from __future__ import annotations

import functools
import zlib

import numpy as np
import pytest
from scipy.stats import binom, binomtest

from harness import stats
from harness.disparity import largest_gap, largest_mean_gap, ratio_to_reference, smallest_ratio
from harness.metrics.calibration import ece_statistic, max_bias
from harness.metrics.fairness import DISPARITIES, disparity, rate_counts

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
        assert CLAIMED[0] <= wilson_coverage(n, p) <= CLAIMED[1], (p, n)


@functools.cache
def wilson_limits(n: int) -> np.ndarray:
    """The harness's Wilson interval for every k of n, ``[n + 1, 2]``."""
    return np.array([stats.wilson(int(k), n) for k in range(n + 1)])


def wilson_coverage(n: int, p: float) -> float:
    """Wilson's exact coverage at (n, p): the binomial probability of the k whose interval holds p."""
    limits = wilson_limits(n)
    return float(binom.pmf(np.arange(n + 1), n, p)[(limits[:, 0] <= p) & (p <= limits[:, 1])].sum())


@pytest.mark.parametrize("n", [30, 100, 1000])
def test_wilson_band_at_small_and_large_n(n):
    """The band docs/metrics.md states: 95% on average over p, at least 91.5% wherever n p >= 1 (92.1% at
    n = 100, p = 0.01, the issue's case), and lower only where fewer than one success is expected."""
    grid = np.linspace(0.0005, 0.5, 400)
    found = np.array([wilson_coverage(n, p) for p in grid])
    assert 0.945 <= found.mean() <= 0.955, found.mean()
    assert found[grid * n >= 1].min() >= 0.915, found[grid * n >= 1].min()
    assert found.min() >= 0.83
    if n == 100:
        assert wilson_coverage(100, 0.01) == pytest.approx(0.921, abs=0.001)


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


# Groups for the disparities: (size, base rate, true-positive rate, false-positive rate) per group
GROUPS = {
    "200+100, 20 positives in the small one, parity": ((200, 0.2, 0.7, 0.1), (100, 0.2, 0.7, 0.1)),
    "200+100, a real disparity": ((200, 0.2, 0.8, 0.15), (100, 0.2, 0.6, 0.05)),
    "30+30, tiny, parity": ((30, 0.5, 0.7, 0.3), (30, 0.5, 0.7, 0.3)),
    "3 unequal groups, parity": ((300, 0.3, 0.7, 0.2), (100, 0.3, 0.7, 0.2), (40, 0.3, 0.7, 0.2)),
    "3 unequal groups, gaps": ((300, 0.3, 0.8, 0.2), (100, 0.25, 0.7, 0.1), (40, 0.4, 0.5, 0.3)),
    "5000+5000, large, small gap": ((5000, 0.4, 0.75, 0.12), (5000, 0.4, 0.72, 0.1)),
}


def simulated_counts(groups, trials: int, seed: int) -> np.ndarray:
    """Confusion counts ``[trials, groups, 2, 2]`` (label by prediction) drawn from the groups' rates."""
    rng = np.random.default_rng(seed)
    out = []
    for size, base, tpr, fpr in groups:
        cells = [(1 - base) * (1 - fpr), (1 - base) * fpr, base * (1 - tpr), base * tpr]  # tn, fp, fn, tp
        out.append(rng.multinomial(size, cells, size=trials).reshape(trials, 2, 2))
    return np.stack(out, 1)


def true_disparity(name: str, groups) -> float:
    """The population value of a disparity from the groups' rates."""
    rates = {
        "selection_rate": [b * t + (1 - b) * f for _, b, t, f in groups],
        "true_positive_rate": [t for _, _, t, _ in groups],
        "false_positive_rate": [f for _, _, _, f in groups],
        "accuracy": [b * t + (1 - b) * (1 - f) for _, b, t, f in groups],
    }
    families, is_gap, _ = DISPARITIES[name]
    each = [max(rates[f]) - min(rates[f]) if is_gap else min(rates[f]) / max(rates[f]) for f in families]
    return max(each) if is_gap else min(each)


def disparity_coverage(name: str, groups, trials: int = 3000) -> float:
    """How often the disparity's interval (the metric's own functions, vectorised over data sets) holds
    the truth; data sets where a group has no positive or no negative example are not counted."""
    counts = simulated_counts(groups, trials, seed=zlib.crc32(name.encode()) % 1000)
    families, is_gap, _ = DISPARITIES[name]
    counted = rate_counts(counts)
    comparisons = (len(groups) * (len(groups) - 1)) if families == ("true_positive_rate",) else None
    between = largest_gap if is_gap else smallest_ratio
    _, low, high = between([counted[f][0] for f in families], [counted[f][1] for f in families],
                           comparisons=comparisons)  # fmt: skip
    truth = true_disparity(name, groups)
    usable = (counts.sum(-1) > 0).all((1, 2))
    hits = (low - 1e-12 <= truth) & (truth <= high + 1e-12)
    return float(hits[usable].mean())


@pytest.mark.parametrize("case", list(GROUPS))
@pytest.mark.parametrize("name", list(DISPARITIES))
def test_every_disparity_interval_covers_at_least_95_percent(name, case):
    found = disparity_coverage(name, GROUPS[case])
    assert found >= 0.945, (name, case, found)  # 3,000 data sets: 95% less 1.3 standard errors


def test_the_vectorised_intervals_are_the_metrics_own():
    """``disparity`` (what the fairness metric records) on one table equals the simulation's draw."""
    counts = simulated_counts(GROUPS["3 unequal groups, gaps"], 5, seed=1)
    for name, (families, is_gap, _) in DISPARITIES.items():
        counted = rate_counts(counts)
        comparisons = 6 if families == ("true_positive_rate",) else None
        between = largest_gap if is_gap else smallest_ratio
        value, low, high = between([counted[f][0] for f in families], [counted[f][1] for f in families],
                                   comparisons=comparisons)  # fmt: skip
        for t in range(5):
            assert disparity(name, counts[t]) == pytest.approx((value[t], low[t], high[t]))


def test_equalized_odds_intervals_are_consistent_with_equal_opportunity():
    """Equalized odds is never below equal opportunity (difference) nor above it (ratio): neither are
    their intervals' ends (the issue's zoo:adult-mlp case had EO's upper end below EOpp's)."""
    counts = simulated_counts(GROUPS["200+100, a real disparity"], 500, seed=3)
    for t in range(500):
        eo, eopp = (
            disparity("equalized_odds_difference", counts[t]),
            disparity("equal_opportunity_difference", counts[t]),
        )
        assert eo[0] >= eopp[0] and eo[1] >= eopp[1] - 1e-12 and eo[2] >= eopp[2] - 1e-12
        eo, eopp = disparity("equalized_odds_ratio", counts[t]), disparity("equal_opportunity_ratio", counts[t])
        assert eo[0] <= eopp[0] and eo[1] <= eopp[1] + 1e-12 and eo[2] <= eopp[2] + 1e-12


def test_the_basic_bootstrap_it_replaces_under_covered():
    """The reason for the change, measured: the basic bootstrap of the equal-opportunity gap between a
    group of 200 and one of 100 (20 positives) with a real disparity covers far less than 95% (73%
    measured; the new interval: at least 95%, above)."""
    groups = GROUPS["200+100, a real disparity"]
    truth = true_disparity("equal_opportunity_difference", groups)
    counts = simulated_counts(groups, 300, seed=5)
    hits = 0
    for t in range(300):

        def statistic(c):
            with np.errstate(invalid="ignore", divide="ignore"):
                rates = c[..., 1, 1] / c[..., 1, :].sum(-1)
            return np.nanmax(rates, -1) - np.nanmin(rates, -1)

        estimate = stats.from_counts(statistic, counts[t], seed=t, method="basic", bounds=(0, 1))
        hits += estimate.ci_low <= truth <= estimate.ci_high
    assert hits / 300 < 0.85


@pytest.mark.parametrize(("true_ratio", "wrong"), [(1.0, "fail"), (0.6, "pass"), (0.8, "pass")])
def test_four_fifths_verdicts_are_wrong_at_most_5_percent_of_the_time(true_ratio, wrong):
    """A verdict from simultaneous ratios to the reference: at parity it fails at most 5% of the time; a
    group truly at 0.6 of the reference (or exactly at the 0.8 edge) passes at most 5% of the time."""
    rng = np.random.default_rng(7)
    trials, reference_rate = 4000, 0.3
    sizes = np.array([400, 150, 80])  # the reference, then two judged groups
    rates = np.array([reference_rate, reference_rate * true_ratio, reference_rate])
    k = rng.binomial(sizes, rates, size=(trials, 3))
    verdicts = []
    for row in k:
        judged = []
        for i in (1, 2):
            lo, hi = ratio_to_reference(row[i], sizes[i], row[0], sizes[0], comparisons=2)
            judged.append("pass" if lo >= 0.8 and hi <= 1.25 else "fail" if hi < 0.8 or lo > 1.25 else "inconclusive")
        verdicts.append("fail" if "fail" in judged else "inconclusive" if "inconclusive" in judged else "pass")
    assert np.mean(np.array(verdicts) == wrong) <= 0.05


@pytest.mark.parametrize(("means", "sizes"), [((0.5, 0.5), (40, 20)), ((0.5, 0.6, 0.5), (60, 30, 15))])
def test_gap_between_group_means_covers_at_least_95_percent(means, sizes):
    """Explanation-quality gaps: the largest gap between group means (skewed scores, small groups)."""
    rng = np.random.default_rng(11)
    truth = max(means) - min(means)
    hits = 0
    for _ in range(2000):
        values = np.concatenate([rng.beta(2, 2 / m - 2, n) for m, n in zip(means, sizes, strict=True)])
        codes = np.repeat(np.arange(len(sizes)), sizes)
        _, low, high = largest_mean_gap(values, codes, len(sizes))
        hits += low <= truth <= high
    assert hits / 2000 >= CONSERVATIVE


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


def test_the_bias_reduced_ece_of_a_calibrated_model_is_smaller_than_the_plug_in_but_not_zero():
    """What docs/metrics.md says of ``ece_debiased``: bias-reduced, not unbiased (true ECE 0, n = 1,000)."""
    rng = np.random.default_rng(0)
    plug_in, reduced = [], []
    for trial in range(100):
        confidence = rng.uniform(0.5, 1, 1000)
        correct = rng.random(1000) < confidence
        value, drawn = stats.draws(ece_statistic(confidence, correct, 15), 1000, resamples=200, seed=trial)
        plug_in.append(float(value))
        reduced.append(max(0.0, float(value) - float(drawn.mean() - value)))
    assert 0.025 < np.mean(plug_in) < 0.033 and 0.013 < np.mean(reduced) < 0.021
