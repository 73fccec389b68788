"""Adversarial robustness: the zoo's expected ordering, consistency of the worst case, an independent
PGD as a check, and every sanity flag fired by a model built to trigger it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from harness.attacks.sanity import model_flags, monotone, result_flags
from harness.context import EvalContext
from harness.metrics.adversarial import Adversarial, AdversarialParams
from harness.models import load_model
from harness.models.base import Model
from harness.registry import attacks
from harness.tasks import get_task

FAST = dict(
    pgd_steps=10,
    minimal_steps=20,
    cw_binary_steps=2,
    blackbox_steps=3,
    blackbox_queries=100,
    batch_size=100,
    active_tests=5,
    active_inner_points=199,
)


def context(model: Model, n: int) -> EvalContext:
    task = get_task("fashion-mnist")
    split = task.load().subset(np.arange(n))
    return EvalContext(model, task, split, torch.device("cpu"), 256, 0, 200, "test", {})


def measure(model: Model, n: int, **params) -> tuple[dict, EvalContext]:
    ctx = context(model, n)
    records = Adversarial().compute(ctx, AdversarialParams(examples=n, **{**FAST, **params}))
    return {(r.metric, r.slice): r for r in records}, ctx


def independent_pgd(module: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 40) -> float:
    """Plain-torch Linf PGD (Madry et al.): random start, steps of 2.5 eps / steps, projection."""
    torch.manual_seed(1)
    delta = (torch.rand_like(x) * 2 - 1) * eps
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = F.cross_entropy(module((x + delta).clamp(0, 1)), y)
        (grad,) = torch.autograd.grad(loss, delta)
        delta = (delta.detach() + 2.5 * eps / steps * grad.sign()).clamp(-eps, eps)
    with torch.no_grad():
        return float((module((x + delta).clamp(0, 1)).argmax(1) == y).float().mean())


def test_every_attack_is_registered():
    expected = {"fgsm", "pgd-linf", "pgd-l2", "deepfool-linf", "deepfool-l2", "cw-l2", "fmn-linf", "hopskipjump"}
    assert expected <= set(attacks.names())
    assert attacks.get("hopskipjump").kind == "blackbox" and attacks.get("cw-l2").norm == "l2"


@pytest.fixture(scope="module")
def zoo_results():
    task = get_task("fashion-mnist")
    out = {}
    for name in ("fmnist-cnn", "fmnist-cnn-adv"):
        model = load_model(f"zoo:{name}", task)
        records, ctx = measure(
            model, 150, attacks=("fgsm", "pgd-linf", "fmn-linf", "pgd-l2"), linf_eps=(0.03, 0.1), l2_eps=(1.0,)
        )
        out[name] = (model, records, ctx)
    return out


def value(records, slice_):
    return records["adversarial.robust_accuracy", slice_].value


def test_adversarially_trained_cnn_is_clearly_more_robust(zoo_results):
    plain, adv = zoo_results["fmnist-cnn"][1], zoo_results["fmnist-cnn-adv"][1]
    assert value(adv, "attack=worst-linf@0.1") > value(plain, "attack=worst-linf@0.1") + 0.3


@pytest.mark.parametrize("name", ["fmnist-cnn", "fmnist-cnn-adv"])
def test_worst_case_is_consistent(zoo_results, name):
    _, records, ctx = zoo_results[name]
    clean = records["adversarial.clean_accuracy", "attack=none"].value
    for eps in ("0.03", "0.1"):
        worst = value(records, f"attack=worst-linf@{eps}")
        assert value(records, f"attack=pgd-linf@{eps}") <= value(records, f"attack=fgsm@{eps}")  # PGD >= FGSM
        for attack in ("fgsm", "pgd-linf", "fmn-linf"):
            assert worst <= value(records, f"attack={attack}@{eps}") <= clean
    assert value(records, "attack=worst-linf@0.1") <= value(records, "attack=worst-linf@0.03")
    frame = ctx.outputs["adversarial"]
    assert (frame["robust_worst-linf@0.1"] <= frame["robust_worst-linf@0.03"]).all()  # monotone per example
    assert (frame["robust_worst-linf@0.03"] <= frame["correct"]).all()
    assert np.isfinite(records["adversarial.median_min_perturbation", "attack=fmn-linf"].value)
    assert not any(r.flags for r in records.values())


@pytest.mark.parametrize("name", ["fmnist-cnn", "fmnist-cnn-adv"])
def test_harness_is_at_least_as_strong_as_an_independent_pgd(zoo_results, name):
    model, records, ctx = zoo_results[name]
    for eps in (0.03, 0.1):
        reference = independent_pgd(model.module, ctx.split.inputs, ctx.split.labels, eps)
        assert value(records, f"attack=worst-linf@{eps:g}") <= reference


# models built to trip each flag -------------------------------------------------------------------


class ZeroGrad(torch.autograd.Function):
    """Identity forward, zero gradient: gradient masking in its purest form."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return torch.zeros_like(grad)


class Masked(nn.Module):
    """Coarse 7x7 means of the image (noise-robust) through a zero-gradient gate, then a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(F.avg_pool2d(ZeroGrad.apply(x), 7).flatten(1))


@pytest.fixture(scope="module")
def masked_model() -> Model:
    torch.manual_seed(0)
    split = get_task("fashion-mnist").load()
    module = Masked()
    optimizer = torch.optim.Adam(module.fc.parameters(), lr=0.05)
    features = F.avg_pool2d(split.inputs[2000:], 7).flatten(1)
    for _ in range(300):
        loss = F.cross_entropy(module.fc(features), split.labels[2000:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return Model("masked", module, "image")


def test_gradient_masking_fires_zero_gradients_blackbox_and_large_eps_flags(masked_model):
    records, _ = measure(masked_model, 60, attacks=("pgd-linf", "hopskipjump"), blackbox_examples=60,
                         blackbox_steps=5, blackbox_queries=200)  # fmt: skip
    flags = records["adversarial.robust_accuracy", "attack=worst-linf@0.1"].flags
    assert {"zero-gradients", "blackbox-stronger", "large-eps-not-broken"} <= set(flags)
    assert all(r.flags == flags for r in records.values())  # every number of the evaluation carries them


class StuckInTraining(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def train(self, mode: bool = True):
        self.training = True  # refuses eval(): dropout and batch-norm statistics stay live
        return self

    def forward(self, x):
        return self.inner(x)


class Noisy(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x) + torch.randn(len(x), 10)


@pytest.mark.parametrize(
    ("wrap", "flag"),
    [
        (StuckInTraining, "training-mode"),
        (Noisy, "randomized-forward"),
        (lambda inner: nn.Sequential(inner, nn.Softmax(dim=1)), "softmax-output"),
        (lambda inner: nn.Sequential(nn.Identity(), Masked()), "zero-gradients"),
    ],
    ids=["training-mode", "randomized-forward", "softmax-output", "zero-gradients"],
)
def test_model_flags_fire_on_models_built_for_them(wrap, flag):
    split = get_task("fashion-mnist").load()
    inner = load_model("zoo:fmnist-cnn", get_task("fashion-mnist")).module
    x, y = split.inputs[:64], split.labels[:64]
    assert model_flags(inner, x, y) == []
    assert flag in model_flags(wrap(inner), x, y)


def test_result_flags():
    # robust above clean cannot come out of the metric (robust starts from clean correctness), so the
    # check is exercised on numbers: it guards against a future attack wrapper that breaks that rule.
    assert result_flags(0.8, {"a": 0.81}, blackbox_gap=None, large_eps_accuracy=None, chance=0.1) == [
        "robust-above-clean"
    ]
    assert result_flags(0.8, {"a": 0.5}, blackbox_gap=0.003, large_eps_accuracy=0.05, chance=0.1) == [
        "blackbox-stronger"
    ]
    assert result_flags(0.8, {"a": 0.5}, blackbox_gap=0.001, large_eps_accuracy=0.3, chance=0.1) == [
        "large-eps-not-broken"
    ]
    assert result_flags(0.8, {"a": 0.5}, blackbox_gap=-0.2, large_eps_accuracy=0.0, chance=0.1) == []


def test_monotone_makes_breaks_persist_to_larger_eps():
    robust = {0.1: np.array([True, True, False]), 0.03: np.array([True, False, True])}
    out = monotone(robust)
    assert out[0.03].tolist() == [True, False, True] and out[0.1].tolist() == [True, False, False]


def test_adversarial_rejects_tabular_tasks_and_unknown_attacks():
    with pytest.raises(Exception, match="unknown attack 'pgd'"):
        AdversarialParams(attacks=("pgd",))
    task = get_task("adult")
    ctx = EvalContext(load_model("zoo:adult-mlp", task), task, task.load(), torch.device("cpu"), 256, 0, 50, "t", {})
    with pytest.raises(ValueError, match="need an image task with declared bounds"):
        Adversarial().compute(ctx, AdversarialParams())


def test_attacks_leave_the_weights_untouched():
    """Parameters are frozen while foolbox attacks (no weight gradients computed or accumulated) and
    their ``requires_grad`` is restored afterwards, even a mix of frozen and trainable ones."""
    from harness.attacks.adversarial import run_attack

    model = load_model("zoo:fmnist-linear", get_task("fashion-mnist"))
    module = model.module
    params = list(module.parameters())
    params[0].requires_grad_(False)
    before = [p.requires_grad for p in params]
    split = get_task("fashion-mnist").load()
    x, y = split.inputs[:20], split.labels[:20]
    budget = AdversarialParams(pgd_steps=3, restarts=1).model_dump()
    run_attack(attacks.get("pgd-linf"), module, x, y, np.ones(20, bool), bounds=(0.0, 1.0), epsilons=[0.1],
               budget=budget, seed=0, batch_size=10)  # fmt: skip
    assert [p.requires_grad for p in params] == before
    assert all(p.grad is None for p in params)


def test_a_quantized_variant_is_attacked_through_its_float_parents_gradients():
    """int8 kernels have no gradients: the attack follows the float parent's (straight-through) and
    judges each success on the int8 model itself; the records carry the flag ``transfer-from-parent``.
    Checked: the wrapped outputs are the int8 model's, its input gradient the parent's Jacobian applied to
    the loss's gradient at the int8 logits, and the attack breaks some of the int8 model's examples."""
    from harness.variants.modules import GradientsFrom

    task = get_task("fashion-mnist")
    parent, variant = load_model("zoo:fmnist-mlp", task), load_model("zoo:fmnist-mlp+int8", task)
    assert variant.surrogate is not None and load_model("zoo:fmnist-mlp+prune=0.5", task).surrogate is None
    x = task.load().inputs[:16].clone().requires_grad_(True)
    y = task.load().labels[:16]
    wrapped = GradientsFrom(variant.surrogate, variant.module)
    out = wrapped(x)
    assert torch.allclose(out.detach(), variant.logits(x.detach()), atol=1e-6)
    (ours,) = torch.autograd.grad(F.cross_entropy(out, y), x)
    x2 = x.detach().clone().requires_grad_(True)  # the parent's Jacobian times the loss's gradient at int8's logits
    at_int8 = (F.softmax(variant.logits(x.detach()), 1) - F.one_hot(y, 10)) / len(y)
    (theirs,) = torch.autograd.grad(parent.module(x2), x2, grad_outputs=at_int8)
    assert torch.allclose(ours, theirs, atol=1e-7)
    records, _ = measure(variant, 40, attacks=["pgd-linf"], linf_eps=[0.1], l2_eps=[], blackbox_examples=1,
                         active_tests=2, active_inner_points=99)  # fmt: skip
    clean = records[("adversarial.clean_accuracy", "attack=none")]
    robust = records[("adversarial.robust_accuracy", "attack=pgd-linf@0.1")]
    assert "transfer-from-parent" in clean.flags and "zero-gradients" not in clean.flags
    assert robust.value < clean.value
    # the binarization tests probe the attack on the parent's features, the gradients it follows
    assert any(metric == "adversarial.active_test_pass_rate" for metric, _ in records)
