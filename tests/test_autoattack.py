"""AutoAttack as the harness writes it: each attack against an independent implementation (torchattacks
3.5.1, a port of the published code, configured with the published budgets), FAB's projection against
a linear-programming / quadratic-programming solver (scipy), the cascade's bookkeeping, monotone
curves, the rand switch, the binarization test's flag, and minimum-norm attacks that find the minimum."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linprog, minimize
from test_adversarial import ZeroGrad, measure
from torch import nn

from harness.attacks import autoattack
from harness.attacks.active import binarization_tests
from harness.attacks.adversarial import run_attack
from harness.attacks.apgd import apgd, checkpoints, dlr_loss, top_targets
from harness.attacks.fab import fab_targeted, project_hyperplane
from harness.attacks.square import square
from harness.metrics.adversarial import AdversarialParams
from harness.models import load_model
from harness.models.base import frozen
from harness.registry import attacks
from harness.tasks import get_task

BUDGET = AdversarialParams().model_dump() | {"protocol": "standard"}
TARGETS = 3  # target classes of APGD-T and FAB-T in the comparisons (AutoAttack: 9), on both sides


@pytest.fixture(scope="module")
def fmnist():
    return get_task("fashion-mnist"), get_task("fashion-mnist").load()


def correct_examples(module: nn.Module, split, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = split.inputs[:n], split.labels[:n]
    with torch.no_grad():
        keep = module(x).argmax(1) == y
    return x[keep], y[keep]


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fab_projection_is_the_exact_minimum(norm):
    """The box-constrained projection onto a hyperplane against scipy's LP (Linf) and SLSQP (L2)."""
    rng = np.random.default_rng(0)
    checked = 0
    for trial in range(40):
        d = 10
        t, w, c = rng.random(d), rng.normal(size=d), rng.normal() * 0.8
        if trial % 4 == 0:
            w[:3] = 0
        step = project_hyperplane(torch.tensor(t[None]), torch.tensor(w[None]), torch.tensor([c]), norm, (0.0, 1.0))
        step = step[0].numpy()
        assert (t + step >= -1e-9).all() and (t + step <= 1 + 1e-9).all()
        reach = np.sum(np.where(w * np.sign(c) > 0, w * (1 - t), -w * t)) * np.sign(c)
        if abs(c) > abs(reach):  # the box does not reach the hyperplane: only the box is checked
            continue
        assert w @ step == pytest.approx(c, abs=1e-7)
        bounds = list(zip(-t, 1 - t, strict=True))
        if norm == "linf":
            eye, ones = np.eye(d), np.ones((d, 1))
            lp = linprog(np.r_[np.zeros(d), 1], A_ub=np.block([[eye, -ones], [-eye, -ones]]), b_ub=np.zeros(2 * d),
                         A_eq=np.r_[w, 0][None], b_eq=[c], bounds=[*bounds, (0, None)])  # fmt: skip
            assert np.abs(step).max() == pytest.approx(lp.fun, abs=1e-6)
        else:
            qp = minimize(lambda z: z @ z, np.zeros(d), method="SLSQP", bounds=bounds, options={"ftol": 1e-12},
                          constraints=[{"type": "eq", "fun": lambda z, w=w, c=c: w @ z - c}])  # fmt: skip
            assert np.linalg.norm(step) == pytest.approx(np.sqrt(qp.fun), abs=1e-5)
        checked += 1
    assert checked >= 20


def test_apgd_checkpoints_are_the_papers():
    """p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06): for 100 iterations the
    published code halves at 22, 41, 57, 70, 80, 87, 93 and 99."""
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]


def _ours(name: str, module, x, y, eps: float, norm: str) -> torch.Tensor:
    torch.manual_seed(0)
    with frozen(module):
        if name == "apgd-ce":
            return apgd(module, x, y, eps=eps, norm=norm, bounds=(0, 1), steps=100)
        if name == "apgd-t":
            return autoattack.STAGES["apgd-t"](module, x, y, eps, norm, (0, 1), BUDGET | {"target_classes": TARGETS})
        if name == "fab-t":
            return fab_targeted(module, x, y, norm=norm, bounds=(0, 1), eps=eps, targets=TARGETS) <= eps
        return square(module, x, y, eps=eps, norm=norm, bounds=(0, 1), queries=1000)


def _theirs(name: str, module, x, y, eps: float, norm: str) -> torch.Tensor:
    import torchattacks

    n = "Linf" if norm == "linf" else "L2"
    attack = {
        "apgd-ce": lambda: torchattacks.APGD(module, norm=n, eps=eps, steps=100, loss="ce", seed=0),
        "apgd-t": lambda: torchattacks.APGDT(module, norm=n, eps=eps, steps=100, n_classes=10, seed=0),
        "fab-t": lambda: torchattacks.FAB(module, norm=n, eps=eps, steps=100, multi_targeted=True, n_classes=10),
        "square": lambda: torchattacks.Square(module, norm=n, eps=eps, n_queries=1000, seed=0),
    }[name]()
    attack.n_target_classes = TARGETS  # read by APGDT and FAB (multi-targeted) only
    adv = attack(x, y)
    with torch.no_grad():
        fooled = module(adv).argmax(1) != y
    delta = (adv - x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    return fooled & (size <= eps * (1 + 1e-4))


@pytest.mark.slow
@pytest.mark.parametrize(("norm", "eps"), [("linf", 0.1)])  # L2 1.0 agreed as well (docstring); left out for CI time
def test_each_attack_and_the_ensemble_match_torchattacks(fmnist, norm, eps):
    """On the adversarially trained CNN's first 100 test images (correctly classified ones), each of
    APGD-CE, APGD-T, FAB-T and Square is within 1.5 points of torchattacks' robust accuracy, and the
    harness's worst case is never above torchattacks' by more than that. To keep CI short both sides
    run 3 target classes and Square 1,000 queries; with AutoAttack's 9 and 5,000 on the same images the
    two agreed exactly on every attack but L2 Square (86.1% against 87.3%: the harness's stronger)."""
    task, split = fmnist
    module = load_model("zoo:fmnist-cnn-adv", task).module.eval()
    x, y = correct_examples(module, split, 100)
    ours, theirs = {}, {}
    for name in ("apgd-ce", "apgd-t", "fab-t", "square"):
        ours[name], theirs[name] = _ours(name, module, x, y, eps, norm), _theirs(name, module, x, y, eps, norm)
        robust_ours, robust_theirs = 1 - ours[name].float().mean(), 1 - theirs[name].float().mean()
        assert abs(robust_ours - robust_theirs) <= 0.015 + 1e-9, (name, float(robust_ours), float(robust_theirs))
    worst_ours = 1 - torch.stack(list(ours.values())).any(0).float().mean()
    worst_theirs = 1 - torch.stack(list(theirs.values())).any(0).float().mean()
    assert worst_ours <= worst_theirs + 0.015 + 1e-9
    assert worst_ours < 1 - 0.1  # the attacks do break a good share of this model's examples at this eps


class Tagged(nn.Module):
    """A model whose images carry their own index: lets fake stages and tests know which examples ran."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(x), 3)


def test_cascade_never_attacks_an_example_again_once_broken(monkeypatch):
    seen: list[tuple[str, float, set[int]]] = []

    def fake(name: str, breaks):
        def stage(forward, x, y, eps, norm, bounds, budget):
            ids = {int(v) for v in x[:, 0, 0, 0].round()}
            seen.append((name, eps, ids))
            return torch.tensor([breaks(int(i), eps) for i in x[:, 0, 0, 0].round()])

        return stage

    monkeypatch.setitem(autoattack.STAGES, "apgd-ce", fake("apgd-ce", lambda i, eps: i % 3 == 0))
    monkeypatch.setitem(autoattack.STAGES, "apgd-t", fake("apgd-t", lambda i, eps: i % 3 == 1 and eps > 0.05))
    monkeypatch.setitem(autoattack.STAGES, "fab-t", fake("fab-t", lambda i, eps: False))
    monkeypatch.setitem(autoattack.STAGES, "square", fake("square", lambda i, eps: i == 7))
    x = torch.arange(30, dtype=torch.float32).view(30, 1, 1, 1).expand(30, 1, 2, 2).clone()
    correct = np.ones(30, dtype=bool)
    correct[[4, 5]] = False
    prefilter = {0.1: np.isin(np.arange(30), [2, 8])}  # a minimum-norm attack broke 2 and 8 at 0.1
    result = autoattack.cascade(autoattack.VERSIONS["standard"], Tagged(), x, torch.zeros(30, dtype=torch.long),
                                correct, norm="linf", bounds=(0, 100), epsilons=[0.1, 0.03], budget=BUDGET, seed=0,
                                batch_size=7, broken=prefilter)  # fmt: skip
    broken_before: dict[float, set[int]] = {}
    for eps in (0.03, 0.1):
        done = {4, 5} | ({2, 8} if eps == 0.1 else set()) | broken_before.get(0.03, set())
        for name in autoattack.VERSIONS["standard"]:
            ran = set().union(*[ids for n, e, ids in seen if n == name and e == eps])
            assert not ran & done, (name, eps, ran & done)  # never attacked again once broken
            done |= {i for i in ran if i % 3 == 0} if name == "apgd-ce" else set()
            done |= {i for i in ran if i % 3 == 1 and eps > 0.05} if name == "apgd-t" else set()
            done |= {7} & ran if name == "square" else set()
        broken_before[eps] = done
        assert set(np.flatnonzero(~result.robust[eps])) == done
    assert (result.robust[0.1] <= result.robust[0.03]).all()  # monotone per example
    assert result.broken_by[0.03][3] == "apgd-ce" and result.broken_by[0.1][1] == "apgd-t"
    assert result.broken_by[0.1][8] == "before" and result.broken_by[0.03][7] == "square"


@pytest.fixture(scope="module")
def zoo_cnn_run():
    model = load_model("zoo:fmnist-cnn", get_task("fashion-mnist"))
    return measure(model, 60, attacks=("autoattack-linf", "fmn-linf", "pgd-linf"), linf_eps=(0.03, 0.05, 0.1),
                   l2_eps=(1.0,), apgd_steps=30, fab_steps=30, square_queries=300, active_tests=8,
                   active_inner_points=199)  # fmt: skip


def test_autoattack_curve_is_monotone_and_below_every_attack(zoo_cnn_run):
    records, ctx = zoo_cnn_run
    frame = ctx.outputs["adversarial"]
    for eps in ("0.03", "0.05", "0.1"):
        aa = frame[f"robust_autoattack-linf@{eps}"]
        assert (aa <= frame[f"robust_fmn-linf@{eps}"]).all()  # the minimum-norm prefilter is honoured
        assert (frame[f"robust_worst-linf@{eps}"] <= aa).all() and (aa <= frame["correct"]).all()
        slice_ = f"attack=autoattack-linf@{eps}"
        assert records["adversarial.robust_accuracy", slice_].params["protocol"] == "AutoAttack standard"
    assert (frame["robust_autoattack-linf@0.1"] <= frame["robust_autoattack-linf@0.05"]).all()
    assert (frame["robust_autoattack-linf@0.05"] <= frame["robust_autoattack-linf@0.03"]).all()
    by = frame["broken_by_autoattack-linf@0.05"]
    assert set(by) <= {"", "before", "apgd-ce", "apgd-t", "fab-t", "square"}
    assert ((by == "") == frame["robust_autoattack-linf@0.05"]).all()


def test_active_tests_pass_for_autoattack_on_the_zoo_cnn(zoo_cnn_run):
    records, _ = zoo_cnn_run
    passed = records["adversarial.active_test_pass_rate", "attack=worst-linf@0.05"]
    assert passed.value >= 0.95 and passed.n >= 5
    assert "attack-too-weak" not in passed.flags


class MaskedCNN(nn.Module):
    """The zoo CNN behind a zero-gradient gate: gradient masking without changing any prediction."""

    def __init__(self, cnn: nn.Module) -> None:
        super().__init__()
        self.cnn = cnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cnn(ZeroGrad.apply(x))


def test_a_one_step_pgd_fails_the_binarization_test_on_a_masked_model(fmnist):
    task, split = fmnist
    cnn = load_model("zoo:fmnist-cnn", task).module.eval()
    x, _ = correct_examples(cnn, split, 12)
    weak = attacks.get("pgd-linf")
    budget = {**BUDGET, "pgd_steps": 1}

    def run(name, module_budget):
        def attack(test_model, xs, ys) -> bool:
            outcome = run_attack(attacks.get(name), test_model, xs, ys, np.ones(1, dtype=bool), bounds=(0, 1),
                                 epsilons=[0.1], budget=module_budget, seed=0, batch_size=1)  # fmt: skip
            return not outcome.robust_at(0.1, np.ones(1, dtype=bool))[0]

        return attack

    masked = binarization_tests(MaskedCNN(cnn), x, eps=0.1, norm="linf", bounds=(0, 1),
                                attack=run(weak.name, budget), inner=199)  # fmt: skip
    strong = binarization_tests(cnn, x, eps=0.1, norm="linf", bounds=(0, 1), attack=run("apgd-ce-linf", BUDGET),
                                inner=199)  # fmt: skip
    assert len(masked) >= 5 and np.mean(masked) < 0.95
    assert len(strong) >= 5 and np.mean(strong) >= 0.95


def test_the_flag_reaches_the_records_of_a_weak_evaluation(fmnist):
    task, _ = fmnist
    cnn = load_model("zoo:fmnist-cnn", task)
    masked = type(cnn)("masked-cnn", MaskedCNN(cnn.module), "image")
    records, _ = measure(masked, 30, attacks=("pgd-linf",), pgd_steps=1, linf_eps=(0.1,), l2_eps=(1.0,),
                         active_tests=8, active_inner_points=199)  # fmt: skip
    robust = records["adversarial.robust_accuracy", "attack=worst-linf@0.1"]
    assert "attack-too-weak" in robust.flags
    assert records["adversarial.active_test_pass_rate", "attack=worst-linf@0.1"].value < 0.95


class Noisy(nn.Module):
    """The zoo CNN on inputs with fresh Gaussian noise at every call: a randomized defence."""

    def __init__(self, cnn: nn.Module) -> None:
        super().__init__()
        self.cnn = cnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cnn(x + 0.05 * torch.randn_like(x))


def test_a_randomized_model_gets_the_rand_version(fmnist, monkeypatch):
    task, _ = fmnist
    cnn = load_model("zoo:fmnist-cnn", task)
    calls: list[str] = []
    for name in ("apgd-ce-eot", "apgd-dlr-eot", "apgd-ce"):
        original = autoattack.STAGES[name]
        monkeypatch.setitem(autoattack.STAGES, name,
                            lambda *a, _n=name, _f=original: calls.append(_n) or _f(*a))  # fmt: skip
    noisy = type(cnn)("noisy-cnn", Noisy(cnn.module), "image")
    records, ctx = measure(noisy, 20, attacks=("autoattack-linf",), linf_eps=(0.1,), l2_eps=(1.0,), apgd_steps=5,
                           eot_iterations=3, active_tests=0)  # fmt: skip
    robust = records["adversarial.robust_accuracy", "attack=autoattack-linf@0.1"]
    assert {"randomized-forward", "autoattack-rand"} <= set(robust.flags)
    assert robust.params["protocol"] == "AutoAttack rand (EoT 3)"
    assert "apgd-ce-eot" in calls and "apgd-ce" not in calls[: calls.index("apgd-ce-eot")]
    assert set(ctx.outputs["adversarial"]["broken_by_autoattack-linf@0.1"]) <= {"", "before", "apgd-ce-eot",
                                                                                 "apgd-dlr-eot"}  # fmt: skip


def test_dlr_losses_match_their_definitions():
    """Croce and Hein (2020), eq. 5 and 6, computed by hand on one row of logits."""
    z = torch.tensor([[3.0, 1.0, 2.0, 0.5, -1.0]])
    y, t = torch.tensor([2]), torch.tensor([1])
    assert dlr_loss(z, y).item() == pytest.approx(-(2.0 - 3.0) / (3.0 - 1.0))
    assert dlr_loss(z, y, t).item() == pytest.approx(-(2.0 - 1.0) / (3.0 - (1.0 + 0.5) / 2))
    assert [int(v) for v in top_targets(z, y, 9)[:2]] == [0, 1] and len(top_targets(z, y, 9)) == 4


@pytest.mark.slow
def test_minimum_norm_attacks_find_the_minimum(fmnist):
    """On the zoo CNN's first 80 test images, each minimum-norm attack's median smallest perturbation is
    within 1.5x of the smallest median of its norm (FAB-T's; measured on 200 images: C&W's 1.3x,
    DeepFool's 1.2x), and finds an adversarial example for almost all. FAB-T runs 3 target classes here."""
    task, split = fmnist
    module = load_model("zoo:fmnist-cnn", task).module.eval()
    x, y = split.inputs[:80], split.labels[:80]
    with torch.no_grad():
        correct = (module(x).argmax(1) == y).numpy()
    medians: dict[str, dict[str, float]] = {"linf": {}, "l2": {}}
    minimal = [name for name in attacks.names() if attacks.get(name).kind == "minimal"]
    assert set(minimal) == {"deepfool-linf", "fmn-linf", "fab-t-linf", "deepfool-l2", "cw-l2", "fab-t-l2"}
    for name in minimal:
        attack = attacks.get(name)
        outcome = run_attack(attack, module, x, y, correct, bounds=(0, 1), epsilons=[1.0], seed=0, batch_size=80,
                             budget=BUDGET | {"target_classes": TARGETS})  # fmt: skip
        norms = outcome.norms[correct]
        assert np.isinf(norms).mean() <= 0.02, name
        medians[attack.norm][name] = float(np.median(norms))
    for norm, found in medians.items():
        assert max(found.values()) <= 1.5 * min(found.values()), (norm, found)
