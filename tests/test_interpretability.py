"""Interpretability: captum's methods through the harness, and each score against an independent
computation or a case whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from harness.context import EvalContext
from harness.disparity import largest_mean_gap
from harness.explain import scores as S
from harness.explain.methods import Settings, method
from harness.metrics.interpretability import Interpretability, InterpretabilityParams
from harness.models import load_model
from harness.registry import explainers
from harness.tasks import get_task


def context(model_name: str, task_name: str = "fashion-mnist", n: int = 200) -> EvalContext:
    task = get_task(task_name)
    split = task.load().subset(np.arange(n))
    return EvalContext(load_model(model_name, task), task, split, torch.device("cpu"), 256, 0, 200, "t", {})


def by(records, metric: str, slice: str):
    return next(r for r in records if r.metric == metric and r.slice == slice)


def test_integrated_gradients_is_complete_within_captums_convergence_delta():
    """Attributions sum to the target logit at the input minus at the baseline: the harness's IG
    (frozen weights, internal batches) gives captum's own attributions, and their sum misses the
    logit difference by exactly captum's convergence delta, which is small at 32 steps."""
    from captum.attr import IntegratedGradients

    module = load_model("zoo:fmnist-cnn", get_task("fashion-mnist")).module.eval()
    x = get_task("fashion-mnist").load().inputs[:16]
    baseline = torch.zeros_like(x)
    target = module(x).argmax(1)
    ours = explainers.get("integrated-gradients").build(module, Settings(ig_steps=32, batch_size=64))
    attributions = ours(x, target=target, baselines=baseline)
    reference, delta = IntegratedGradients(module).attribute(x, baselines=baseline, target=target, n_steps=32,
                                                             return_convergence_delta=True)  # fmt: skip
    assert torch.allclose(attributions, reference, atol=1e-5)
    with torch.no_grad():
        difference = module(x).gather(1, target[:, None])[:, 0] - module(baseline).gather(1, target[:, None])[:, 0]
    total = attributions.flatten(1).sum(1)
    assert torch.allclose(total - difference, delta.float(), atol=1e-4)
    assert (delta.abs() <= 0.05 * difference.abs() + 1e-3).all()


class OnePixel(nn.Module):
    """Class 0's logit is 8 x (pixel (5, 7)) - 4; class 1's is 0: only that pixel matters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logit = 8 * x[:, 0, 5, 7] - 4
        return torch.stack([logit, torch.zeros_like(logit)], 1)


def test_deletion_auc_rewards_the_attribution_that_ranks_the_decisive_pixel_first():
    rng = np.random.default_rng(0)
    x = torch.rand(32, 1, 28, 28)
    x[:, 0, 5, 7] = 1.0  # every example is class 0 with probability sigmoid(4)
    model, targets = OnePixel(), torch.zeros(32, dtype=torch.long)

    def probability(z: torch.Tensor) -> np.ndarray:
        return model(z).softmax(1).gather(1, targets[:, None])[:, 0].numpy()

    oracle = np.zeros((32, 784))
    oracle[:, 5 * 28 + 7] = 1.0
    random = rng.random((32, 784))
    base = torch.zeros_like(x)
    deletion_oracle, insertion_oracle = S.deletion_insertion(probability, x, base, oracle, steps=20, rng=rng)
    deletion_random, insertion_random = S.deletion_insertion(probability, x, base, random, steps=20, rng=rng)
    high, low = 1 / (1 + np.exp(-4)), 1 / (1 + np.exp(4))
    # the oracle removes the pixel in the first step (the first 5% of pixels): the area is the
    # trapezoid from high to low over 1/20, then low
    assert deletion_oracle == pytest.approx(np.full(32, (high + low) / 2 / 20 + low * 19 / 20))
    assert insertion_oracle == pytest.approx(np.full(32, (high + low) / 2 / 20 + high * 19 / 20))
    assert deletion_random.mean() > deletion_oracle.mean() + 0.3
    assert insertion_random.mean() < insertion_oracle.mean() - 0.3


def test_faithfulness_correlation_is_one_for_exact_attributions_of_a_linear_model():
    """For a linear model, integrated gradients from a zero baseline are exact: each subset's
    attribution mass equals the drop of the logit when the subset is zeroed."""
    w = torch.randn(784)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([w, -w]))
        model[1].bias.zero_()
    x = torch.rand(8, 1, 28, 28)
    exact = (x[:, 0].reshape(8, -1) * w).numpy()

    def logit(z: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return model(z)[:, 0].numpy()

    rng = np.random.default_rng(1)
    rho = S.faithfulness_correlation(logit, x, torch.zeros_like(x), exact, subset=78, runs=30, rng=rng)
    assert rho == pytest.approx(np.ones(8), abs=1e-4)
    flipped = S.faithfulness_correlation(logit, x, torch.zeros_like(x), -exact, subset=78, runs=30, rng=rng)
    assert flipped == pytest.approx(-np.ones(8), abs=1e-4)
    assert np.isnan(S.faithfulness_correlation(logit, x, torch.zeros_like(x), np.ones((8, 784)), subset=78,
                                               runs=30, rng=rng)).all()  # fmt: skip


def test_sparseness_is_the_gini_index():
    """Against the definition by mean absolute difference: G = sum_ij |a_i - a_j| / (2 n^2 mean)."""
    values = np.abs(np.random.default_rng(2).standard_normal((5, 50))) ** 3
    direct = np.abs(values[:, :, None] - values[:, None, :]).sum((1, 2)) / (2 * 50**2 * values.mean(1))
    assert S.sparseness(values) == pytest.approx(direct)
    assert S.sparseness(np.array([[0, 0, 0, 1.0], [1, 1, 1, 1.0]])) == pytest.approx([0.75, 0.0])
    assert np.isnan(S.sparseness(np.zeros((1, 4))))[0]


def test_spearman_rows_match_scipy_over_the_chosen_entries():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    a, b = rng.random((4, 30)), rng.random((4, 30))
    a[:, :10] = 0  # ties
    where = rng.random((4, 30)) > 0.3
    got = S.spearman_rows(a, b, where)
    for i in range(4):
        assert got[i] == pytest.approx(spearmanr(a[i][where[i]], b[i][where[i]]).statistic)


def test_group_gap_is_the_largest_minus_the_smallest_group_mean():
    rng = np.random.default_rng(4)
    values, codes = rng.random(300), rng.integers(0, 3, 300)
    means = pd.Series(values).groupby(codes).mean()
    value, low, high = largest_mean_gap(values, codes, 3)
    assert value == pytest.approx(means.max() - means.min()) and low <= value <= high


@pytest.fixture(scope="module")
def test_explainers():
    """Two explainers registered as a plugin would: an edge detector that ignores the model, and the
    signed input gradient."""

    @method("test-edges", "Sobel edges of the input (ignores the model)", ("image",), uses_baseline=False)
    def edges(module, settings):
        kernel = torch.tensor([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]])[None, None]

        def explain(x, target, baselines=None):
            gx = nn.functional.conv2d(x, kernel, padding=1)
            gy = nn.functional.conv2d(x, kernel.transpose(2, 3), padding=1)
            out = (gx**2 + gy**2).sqrt()
            return out

        return explain

    @method("test-gradient", "signed gradient of the target logit", ("image",), uses_baseline=False)
    def gradient(module, settings):
        from captum.attr import Saliency

        saliency = Saliency(module)
        return lambda x, target, baselines=None: saliency.attribute(x, target=target, abs=False)

    yield
    for name in ("test-edges", "test-gradient"):
        explainers._entries.pop(name)


def test_randomisation_fails_a_method_that_ignores_the_model_and_passes_gradients(test_explainers):
    ctx = context("zoo:fmnist-cnn")
    params = InterpretabilityParams(methods=("test-edges", "saliency"), examples=24, correlation_runs=5,
                                    infidelity_samples=2, sensitivity_samples=2, randomisation_examples=16)  # fmt: skip
    records = Interpretability().compute(ctx, params)
    edges, saliency = by(records, "interpretability.randomisation_pass", "method=test-edges"), by(
        records, "interpretability.randomisation_pass", "method=saliency")  # fmt: skip
    assert edges.value == 0 and edges.params["final_correlation"] == pytest.approx(1.0)
    assert saliency.value == 1 and saliency.params["final_correlation"] < 0.2
    for r in records:
        if r.slice.startswith("method=test-edges"):
            assert "fails-randomisation-test" in r.flags
        else:
            assert "fails-randomisation-test" not in r.flags
    cascade = [r for r in records if r.metric == "interpretability.randomisation_correlation"
               and r.slice.startswith("method=saliency")]  # fmt: skip
    assert [r.slice.split("randomised=")[1] for r in cascade] == ["top-1/4", "top-2/4", "top-3/4", "top-4/4"]
    assert "attributions" in ctx.figures and ctx.figures["attributions"][:4] == b"\x89PNG"
    frame = ctx.outputs["interpretability"]
    assert len(frame) == 24 and "saliency/deletion_auc" in frame.columns


def test_infidelity_and_sensitivity_vanish_for_the_gradient_of_a_linear_model(test_explainers):
    """The gradient explains a linear model exactly (infidelity 0: every perturbation's output change
    is the gradient times the perturbation) and does not change when the input moves (sensitivity 0)."""
    ctx = context("zoo:fmnist-linear", n=64)
    params = InterpretabilityParams(methods=("test-gradient",), examples=16, correlation_runs=5,
                                    randomisation_examples=8)  # fmt: skip
    records = Interpretability().compute(ctx, params)
    assert by(records, "interpretability.infidelity", "method=test-gradient").value == pytest.approx(0, abs=1e-6)
    assert by(records, "interpretability.sensitivity_max", "method=test-gradient").value == pytest.approx(0, abs=1e-5)


def test_tabular_explanations_give_feature_importance_and_gaps_between_groups():
    ctx = context("zoo:adult-mlp", "adult", n=400)
    params = InterpretabilityParams(examples=120, correlation_runs=10, infidelity_samples=3, sensitivity_samples=2,
                                    shapley_samples=5, randomisation_examples=40)  # fmt: skip
    records = Interpretability().compute(ctx, params)
    columns = get_task("adult").schema.columns
    importance = [r for r in records if r.metric == "interpretability.feature_importance"
                  and r.slice.startswith("method=feature-ablation,")]  # fmt: skip
    assert [r.slice.split("feature=")[1] for r in importance] == list(columns)
    assert all(r.value >= 0 for r in importance)
    frame = ctx.outputs["interpretability"]
    assert frame["example"].is_unique and len(frame) == 120
    rows = ctx.split.attributes.set_index("index").loc[frame["example"]]
    assert not np.isnan(
        ctx.split.inputs[frame["example"].to_numpy().copy()].numpy()
    ).any()  # no row with a missing value
    sex = rows["sex"].astype(str).to_numpy()
    values = frame["feature-ablation/deletion_auc"].to_numpy()
    per_group = pd.Series(values).groupby(sex).mean()
    gap = by(records, "interpretability.deletion_auc_gap", "method=feature-ablation,feature=sex")
    assert gap.value == pytest.approx(per_group.max() - per_group.min())
    assert gap.ci_low <= gap.value <= gap.ci_high
    for group, mean in per_group.items():
        assert by(records, "interpretability.deletion_auc",
                  f"method=feature-ablation,feature=sex,group={group}").value == pytest.approx(mean)  # fmt: skip
    assert ctx.figures["feature-importance"][:4] == b"\x89PNG"


def test_explainers_are_checked_against_the_task_when_the_run_is_planned():
    metric = Interpretability()
    with pytest.raises(ValueError, match="works on tabular tasks, not on fashion-mnist"):
        metric.check(get_task("fashion-mnist"), InterpretabilityParams(methods=("feature-ablation",)))
    with pytest.raises(ValueError, match="baseline 'blurred' does not fit tabular inputs"):
        metric.check(get_task("adult"), InterpretabilityParams(baseline="blurred"))
    with pytest.raises(LookupError, match="Did you mean 'saliency'"):
        metric.check(get_task("fashion-mnist"), InterpretabilityParams(methods=("salency",)))


def test_blurred_baseline_keeps_the_mean_and_removes_edges():
    from harness.explain.baselines import image_baseline

    x = get_task("fashion-mnist").load().inputs[:8]
    blurred = image_baseline("blurred", x)
    assert blurred.shape == x.shape
    assert (blurred.mean((1, 2, 3)) - x.mean((1, 2, 3))).abs().max() < 0.05
    assert blurred.diff(dim=3).abs().mean() < 0.5 * x.diff(dim=3).abs().mean()
