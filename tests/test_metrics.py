"""Accuracy and calibration against scikit-learn and independent implementations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import log_softmax, softmax
from sklearn import metrics as skm

from harness.metrics.accuracy import Accuracy
from harness.metrics.base import NoParams
from harness.metrics.calibration import Calibration, CalibrationParams
from tests.helpers import context_for


def by_name(records):
    return {(r.metric, r.slice): r for r in records}


def test_accuracy_matches_sklearn(random_predictions):
    logits, labels = random_predictions
    records = by_name(Accuracy().compute(context_for(logits, labels), NoParams()))
    preds = logits.argmax(1)
    assert records["accuracy.top1", "overall"].value == pytest.approx(skm.accuracy_score(labels, preds))
    assert records["accuracy.top5", "overall"].value == pytest.approx(
        skm.top_k_accuracy_score(labels, logits, k=5, labels=np.arange(10))
    )
    assert records["accuracy.balanced", "overall"].value == pytest.approx(skm.balanced_accuracy_score(labels, preds))
    assert records["accuracy.macro_f1", "overall"].value == pytest.approx(skm.f1_score(labels, preds, average="macro"))
    per_class = skm.recall_score(labels, preds, average=None)
    for c in range(10):
        assert records["accuracy.top1", f"class=c{c}"].value == pytest.approx(per_class[c])
        assert records["accuracy.top1", f"class=c{c}"].n == int((labels == c).sum())
    for r in records.values():
        assert r.ci_low <= r.value <= r.ci_high
        assert r.direction == "higher" and r.category == "accuracy"
        assert not r.flags


def test_no_top5_with_few_classes():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    logits = rng.normal(size=(300, 2))
    names = {r.metric for r in Accuracy().compute(context_for(logits, labels), NoParams())}
    assert "accuracy.top5" not in names
    assert "accuracy.top1" in names


def independent_ece(probs: np.ndarray, labels: np.ndarray, bins: int) -> float:
    """Guo et al. (2017), written as a loop over bins."""
    confidence, preds = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        members = (confidence > lo) & (confidence <= hi)
        if members.any():
            total += members.mean() * abs((preds[members] == labels[members]).mean() - confidence[members].mean())
    return total


@pytest.mark.parametrize("bins", [15, 10])
def test_calibration_matches_independent_computations(random_predictions, bins):
    logits, labels = random_predictions
    records = by_name(Calibration().compute(context_for(logits, labels), CalibrationParams(bins=bins)))
    probs = softmax(logits.astype(np.float64), axis=1)
    assert records["calibration.ece", "overall"].value == pytest.approx(independent_ece(probs, labels, bins))
    ece = records["calibration.ece", "overall"]
    assert ece.params["bins"] == bins and ece.interval == "bias-bounded"
    assert 0 < ece.params["binning_bias"] <= ece.params["largest_binning_bias"]  # resampling inflates, boundedly
    debiased = records["calibration.ece_debiased", "overall"]
    assert debiased.value == pytest.approx(max(0.0, ece.value - ece.params["binning_bias"]))
    assert records["calibration.nll", "overall"].value == pytest.approx(
        skm.log_loss(labels, probs, labels=np.arange(10))
    )
    brier = ((probs - np.eye(10)[labels]) ** 2).sum(1).mean()
    assert records["calibration.brier", "overall"].value == pytest.approx(brier)
    nll = -log_softmax(logits.astype(np.float64), axis=1)[np.arange(len(labels)), labels].mean()
    assert records["calibration.nll", "overall"].value == pytest.approx(nll)
    for r in records.values():
        assert r.direction == "lower" and r.ci_low <= r.value <= r.ci_high


def test_binary_brier_matches_sklearn():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 500)
    logits = np.stack([np.zeros(500), rng.normal(labels * 2 - 1, 1.5)], 1)
    records = by_name(Calibration().compute(context_for(logits, labels), CalibrationParams()))
    p1 = softmax(logits, axis=1)[:, 1]
    # the two-class Brier over both classes is twice scikit-learn's positive-class Brier
    assert records["calibration.brier", "overall"].value == pytest.approx(2 * skm.brier_score_loss(labels, p1))


def test_overconfident_model_has_higher_ece(random_predictions):
    logits, labels = random_predictions
    calm = Calibration().compute(context_for(logits, labels), CalibrationParams())
    hot = Calibration().compute(context_for(logits * 8, labels), CalibrationParams())
    assert by_name(hot)["calibration.ece", "overall"].value > 3 * by_name(calm)["calibration.ece", "overall"].value


def test_nonfinite_logits_are_flagged_not_averaged(random_predictions):
    logits, labels = random_predictions
    logits = logits.copy()
    logits[:7, 0] = np.nan
    logits[7:10, 3] = np.inf
    ctx = context_for(logits, labels)
    acc = by_name(Accuracy().compute(ctx, NoParams()))["accuracy.top1", "overall"]
    cal = by_name(Calibration().compute(ctx, CalibrationParams()))["calibration.nll", "overall"]
    assert "nonfinite-logits=10" in acc.flags and "nonfinite-logits=10" in cal.flags
    assert not acc.ok
    # non-finite rows count as wrong for accuracy, and are left out of calibration
    finite = np.isfinite(logits).all(1)
    expected = ((logits.argmax(1) == labels) & finite).mean()
    assert acc.value == pytest.approx(expected)
    assert cal.n == finite.sum() and np.isfinite(cal.value)
