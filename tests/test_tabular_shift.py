"""Tabular shift: the perturbations themselves, and the metric against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.attacks.tabular import gaussian_noise, missing_values, subpopulation_weights
from harness.context import EvalContext
from harness.metrics.tabular_shift import TabularShift, TabularShiftParams
from harness.models import load_model
from harness.tasks import get_task


def test_noise_touches_only_numeric_features_in_units_of_their_std():
    task = get_task("adult")
    x = task.load().inputs.numpy()
    k = len(task.schema.numeric)
    stds = np.ones(k)
    shifted = gaussian_noise(x, task.schema, stds * 2, 0.5, seed=3)
    assert np.array_equal(shifted[:, k:], x[:, k:], equal_nan=True)
    delta = (shifted[:, :k] - x[:, :k]).astype(np.float64)
    assert delta.std(0) == pytest.approx(np.ones(k), rel=0.03)  # 0.5 * std 2
    assert np.array_equal(shifted, gaussian_noise(x, task.schema, stds * 2, 0.5, seed=3), equal_nan=True)
    assert np.array_equal(gaussian_noise(x, task.schema, stds, 0.0, seed=1), x, equal_nan=True)


def test_missing_values_blank_the_asked_share():
    x = np.zeros((20_000, 5), dtype=np.float32)
    assert np.isnan(missing_values(x, 0.25, seed=0)).mean() == pytest.approx(0.25, abs=0.01)
    assert not np.isnan(missing_values(x, 0.0, seed=0)).any()


def test_subpopulation_weights_give_the_group_its_share():
    groups = np.array(["a"] * 30 + ["b"] * 70)
    w = subpopulation_weights(groups, "a", 0.8)
    assert w[groups == "a"].sum() / w.sum() == pytest.approx(0.8)
    with pytest.raises(ValueError, match="cannot be reweighted"):
        subpopulation_weights(np.array(["a", "a"]), "a", 0.5)


@pytest.fixture(scope="module")
def shift_records():
    task = get_task("adult")
    model = load_model("zoo:adult-logreg", task)
    ctx = EvalContext(model, task, task.load(), torch.device("cpu"), 4096, 0, 200, "t", {})
    records = TabularShift().compute(ctx, TabularShiftParams())
    return {r.slice: r for r in records if r.metric == "tabular_shift.accuracy"}, records, ctx


def test_subpopulation_accuracy_matches_the_mixture_of_group_accuracies(shift_records):
    by_slice, _, ctx = shift_records
    correct, sex = ctx.clean.correct, ctx.split.attributes["sex"].to_numpy()
    expected = 0.8 * correct[sex == "Female"].mean() + 0.2 * correct[sex == "Male"].mean()
    assert by_slice["shift=subpopulation:sex=Female"].value == pytest.approx(expected)
    assert by_slice["shift=none"].value == pytest.approx(correct.mean())


def test_shifts_hurt_more_as_they_grow_and_worst_is_the_minimum(shift_records):
    by_slice, records, _ = shift_records
    noise = [by_slice[f"shift=noise@{s}"].value for s in ("0.1", "0.25", "0.5", "1")]
    missing = [by_slice[f"shift=missing@{r}"].value for r in ("0.1", "0.25", "0.5")]
    assert noise == sorted(noise, reverse=True) and missing == sorted(missing, reverse=True)
    assert by_slice["shift=none"].value > noise[-1]
    worst = next(r for r in records if r.metric == "tabular_shift.worst_accuracy")
    assert worst.value == min(r.value for s, r in by_slice.items() if s != "shift=none")
    assert all(r.ci_low <= r.value <= r.ci_high for r in records)


def test_tabular_shift_needs_a_tabular_task():
    task = get_task("fashion-mnist")
    ctx = EvalContext(
        load_model("zoo:fmnist-linear", task), task, task.load(), torch.device("cpu"), 512, 0, 50, "t", {}
    )
    with pytest.raises(ValueError, match="needs a tabular task"):
        TabularShift().compute(ctx, TabularShiftParams())


def test_the_job_spec_names_the_training_data_the_noise_is_scaled_by():
    """The noise unit is each feature's std on the train split, so the spec carries that split's
    fingerprint: holding rows out of the training file (the validation split) measures again."""
    task = get_task("adult")
    depends = TabularShift().depends(TabularShiftParams(), task)
    assert depends == {"noise_unit_from": task.load("train").fingerprint}
    assert depends["noise_unit_from"] != task.load("validation").fingerprint
    # so for interpretability, whose tabular baseline and noise come from the train split too
    from harness.metrics.interpretability import Interpretability, InterpretabilityParams

    assert Interpretability().depends(InterpretabilityParams(), task) == {"training_data": depends["noise_unit_from"]}
    assert Interpretability().depends(InterpretabilityParams(), get_task("fashion-mnist")) == {}
