"""Paired comparisons: McNemar's exact test and Holm's adjustment against direct computations, the
pairing of per-example outputs, and the refusal of unpaired comparisons."""

from __future__ import annotations

from math import comb

import numpy as np
import pandas as pd
import pytest

from harness.leaderboard.compare import CompareError, compare, holm, mcnemar_exact
from harness.store import Store


def test_mcnemar_exact_is_the_binomial_test_of_the_discordant_pairs():
    rng = np.random.default_rng(0)
    a, b = rng.random(300) < 0.8, rng.random(300) < 0.7
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n, k = only_a + only_b, min(only_a, only_b)
    direct = min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2**n)
    assert mcnemar_exact(a, b) == pytest.approx(direct)
    assert mcnemar_exact(a, a) == 1.0


def test_holm_steps_down_and_keeps_the_order():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def save(store: Store, model: str, frame: pd.DataFrame, kind: str = "clean", task_fp: str = "t1") -> None:
    store.save_examples(f"{model}-{kind}", frame, model=model, task="fashion-mnist", kind=kind,
                        fingerprints=("m", task_fp), run_id="r1")  # fmt: skip


def test_a_paired_comparison_tests_each_outcome_and_gives_a_verdict(tmp_path):
    rng = np.random.default_rng(1)
    examples = np.arange(500)
    a, b = rng.random(500) < 0.9, rng.random(500) < 0.6
    with Store(tmp_path) as store:
        save(store, "A", pd.DataFrame({"example": examples, "label": 0, "correct": a}))
        save(store, "B", pd.DataFrame({"example": examples[::-1], "label": 0, "correct": b[::-1]}))  # other order
        save(store, "A", pd.DataFrame({"example": examples, "saliency/deletion_auc": a * 0.1}), "interpretability")
        save(store, "B", pd.DataFrame({"example": examples, "saliency/deletion_auc": b * 0.1}), "interpretability")
        rows = {c.figure: c for c in compare(store, "A", "B")}
    accuracy = rows["accuracy.top1"]
    assert accuracy.a.value == pytest.approx(a.mean()) and accuracy.b.value == pytest.approx(b.mean())
    assert accuracy.difference.value == pytest.approx(a.mean() - b.mean())
    assert accuracy.test == "McNemar exact" and accuracy.p == pytest.approx(mcnemar_exact(a, b))
    assert accuracy.verdict == "A better"
    deletion = rows["interpretability.deletion_auc method=saliency"]
    assert deletion.test == "paired bootstrap" and deletion.verdict == "B better"  # lower deletion AUC is better
    assert [accuracy.p_holm, deletion.p_holm] == pytest.approx(holm([accuracy.p, deletion.p]))


def test_unpaired_comparisons_are_refused_with_the_reason(tmp_path):
    with Store(tmp_path) as store:
        save(store, "A", pd.DataFrame({"example": np.arange(100), "correct": True}))
        save(store, "B", pd.DataFrame({"example": np.arange(50), "correct": True}))
        save(store, "C", pd.DataFrame({"example": np.arange(100), "correct": True}), task_fp="other")
        unpaired = r"different examples of fashion-mnist \(clean: A on \[100\] examples, B on \[50\]"
        with pytest.raises(CompareError, match=unpaired):
            compare(store, "A", "B")
        with pytest.raises(CompareError, match="different data"):
            compare(store, "A", "C")
        with pytest.raises(CompareError, match="no per-example outputs of D"):
            compare(store, "A", "D")


def test_over_representation_among_exemplars_on_a_constructed_case():
    """1,000 examples, 30% of them 'F'; 50 exemplars of which 40 are 'F' (80%): over-represented, its
    p-value the hypergeometric tail computed independently (scipy.stats.hypergeom); 'M' is not; the
    other direction's 10 exemplars, spread as the data is, show nothing."""
    import pandas as pd
    from scipy.stats import hypergeom

    from harness.leaderboard.exemplars import DIRECTIONS, fisher_greater, over_representation

    n = 1000
    sex = np.array(["F"] * 300 + ["M"] * 700)
    direction = np.array([""] * n, dtype=object)
    direction[:40] = DIRECTIONS[0]  # 40 of the F
    direction[300:310] = DIRECTIONS[0]  # 10 of the M
    direction[[100, 401, 500, 601, 700, 801, 900, 951, 990, 201]] = DIRECTIONS[1]  # both classes, 2 of them F
    joined = pd.DataFrame({"label": np.arange(n) % 2, "attr_sex": sex, "attr_id": np.arange(n)})
    groups = over_representation(joined, pd.Series(direction), ("no", "yes"))
    by = {(g.direction, g.feature, g.group): g for g in groups}
    female = by[DIRECTIONS[0], "sex", "F"]
    assert (female.count, female.exemplars, female.size) == (40, 50, 300)
    assert female.p == pytest.approx(hypergeom.sf(40 - 1, n, 300, 50), rel=1e-9)
    assert female.ratio == pytest.approx(0.8 / 0.3) and female.p_holm < 1e-10
    assert by[DIRECTIONS[0], "sex", "M"].p > 0.5
    assert by[DIRECTIONS[0], "class", "no"].exemplars == 50  # classes are named
    assert not any(g.direction == DIRECTIONS[1] and g.p_holm < 0.05 for g in groups)
    assert not any(g.feature == "id" for g in groups)  # a column of 1,000 values is not a grouping
    assert fisher_greater(0, 10, 300, n) == 1.0


def test_gap_deltas_against_groupby_and_an_example_bootstrap():
    """The variant's group gaps minus the parent's, each gap computed directly with pandas; the paired
    interval close to a bootstrap that resamples the examples themselves (the multinomial over the joint
    table is the same distribution: bounds within 0.01 at 2,000 resamples each)."""
    import pandas as pd

    from harness.leaderboard.deltas import gap_deltas

    rng = np.random.default_rng(3)
    n = 3000
    sex = rng.choice(["F", "M"], n, p=[0.35, 0.65])
    label = rng.integers(0, 2, n)
    a = rng.random(n) < 0.85
    b = a & ~((sex == "F") & (label == 1) & (rng.random(n) < 0.15))  # the variant forgets positive F examples
    joined = pd.DataFrame({"label": label, "attr_sex": sex, "correct_a": a, "correct_b": b})
    found = {d.rate: d for d in gap_deltas(joined, ("no", "yes"), resamples=2000, seed=1)}

    def gaps(frame: pd.DataFrame, column: str) -> float:
        rates = frame.groupby("attr_sex")[column].mean()
        return float(rates.max() - rates.min())

    tpr = found["true-positive rate"]
    positives = joined[joined["label"] == 1]
    assert tpr.parent == pytest.approx(gaps(positives, "correct_a"))
    assert tpr.variant == pytest.approx(gaps(positives, "correct_b"))
    assert tpr.delta.value == pytest.approx(tpr.variant - tpr.parent)
    draws = []
    for _ in range(2000):
        sample = joined.iloc[rng.integers(0, n, n)]
        pos = sample[sample["label"] == 1]
        draws.append(gaps(pos, "correct_b") - gaps(pos, "correct_a"))
    low, high = np.percentile(draws, [2.5, 97.5])
    assert abs(tpr.delta.ci_low - low) < 0.01 and abs(tpr.delta.ci_high - high) < 0.01
    assert tpr.delta.ci_low > 0  # widened, and the interval says so
    accuracy = found["accuracy"]
    assert accuracy.delta.value == pytest.approx(gaps(joined, "correct_b") - gaps(joined, "correct_a"))
