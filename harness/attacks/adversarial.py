"""Adversarial attacks, registered by name: foolbox 3's, and the torch-native ones of AutoAttack
(``harness.attacks.autoattack``).

Each attack is one of four kinds:

- ``fixed``: finds an adversarial example inside an epsilon ball, for each epsilon of a grid
  (FGSM, PGD); the result is robust or not per example and epsilon;
- ``minimal``: looks for the smallest adversarial perturbation (DeepFool, C&W, FMN); an example is
  robust at epsilon when the smallest perturbation found is larger than epsilon;
- ``blackbox``: a decision-based minimal attack that uses only the predicted labels (HopSkipJump),
  run on a smaller subset as a check against gradient masking;
- ``protocol``: an ensemble run as a cascade over the examples still robust (AutoAttack).

Defaults are strong rather than foolbox's: PGD takes ``steps`` steps of 2.5 * eps / steps (Madry et
al., 2018) from a random start, with restarts, so that it is never weaker than FGSM.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from harness.registry import attacks

if TYPE_CHECKING:
    import torch

Norm = Literal["linf", "l2"]
Kind = Literal["fixed", "minimal", "blackbox", "protocol"]


def foolbox() -> Any:
    """Import foolbox; GitPython, which it imports, fails where git is missing unless told to be quiet."""
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import foolbox as fb

    return fb


@dataclass(frozen=True)
class Attack:
    name: str
    norm: Norm
    kind: Kind
    description: str
    build: Callable[[dict[str, Any]], Any] | None = None  # budget -> foolbox attack
    stages: tuple[str, ...] = ()  # torch-native: the cascade's stages (harness.attacks.autoattack.STAGES)

    @property
    def native(self) -> bool:
        return self.build is None


@dataclass
class Outcome:
    """Per-example results of one attack on n examples."""

    attack: Attack
    robust: dict[float, np.ndarray] | None = None  # fixed attacks: epsilon -> robust[n]
    norms: np.ndarray | None = None  # minimal attacks: smallest perturbation found (inf if none)
    stages: tuple[str, ...] = ()  # torch-native attacks: the stages that ran, in order
    broken_by: dict[float, np.ndarray] | None = None  # epsilon -> the stage that broke each example

    def robust_at(self, eps: float, correct: np.ndarray) -> np.ndarray:
        if self.robust is not None:
            return self.robust[eps]
        assert self.norms is not None
        return correct & (self.norms > eps)


def _register(name: str, norm: Norm, kind: Kind, description: str):
    def add(build: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
        attacks.register(name, description)(Attack(name, norm, kind, description, build))
        return build

    return add


def _native(attack: Attack) -> None:
    """Register a torch-native attack (``harness.attacks.autoattack``, imported when one runs)."""
    attacks.register(attack.name, attack.description)(attack)


@_register("fgsm", "linf", "fixed", "fast gradient sign method (Goodfellow et al., 2015), one step of size eps")
def _fgsm(budget: dict[str, Any]) -> Any:
    return foolbox().attacks.FGSM(random_start=False)


@_register("pgd-linf", "linf", "fixed", "projected gradient descent in the Linf ball, random start, restarts")
def _pgd_linf(budget: dict[str, Any]) -> Any:
    steps = budget["pgd_steps"]
    return foolbox().attacks.LinfPGD(rel_stepsize=2.5 / steps, steps=steps, random_start=True)


@_register("pgd-l2", "l2", "fixed", "projected gradient descent in the L2 ball, random start, restarts")
def _pgd_l2(budget: dict[str, Any]) -> Any:
    steps = budget["pgd_steps"]
    return foolbox().attacks.L2PGD(rel_stepsize=2.5 / steps, steps=steps, random_start=True)


@_register("deepfool-linf", "linf", "minimal", "DeepFool (Moosavi-Dezfooli et al., 2016), Linf, minimal perturbation")
def _deepfool_linf(budget: dict[str, Any]) -> Any:
    return foolbox().attacks.LinfDeepFoolAttack(steps=budget["minimal_steps"], candidates=None)


@_register("deepfool-l2", "l2", "minimal", "DeepFool (Moosavi-Dezfooli et al., 2016), L2, minimal perturbation")
def _deepfool_l2(budget: dict[str, Any]) -> Any:
    return foolbox().attacks.L2DeepFoolAttack(steps=budget["minimal_steps"], candidates=None)


@_register("cw-l2", "l2", "minimal", "Carlini and Wagner (2017) L2, minimal perturbation by binary search")
def _cw_l2(budget: dict[str, Any]) -> Any:
    return foolbox().attacks.L2CarliniWagnerAttack(
        steps=budget["minimal_steps"],
        binary_search_steps=budget["cw_binary_steps"],
        initial_const=budget["cw_initial_const"],
        stepsize=budget["cw_stepsize"],
    )


@_register("fmn-linf", "linf", "minimal", "fast minimum-norm attack (Pintor et al., 2021), Linf")
def _fmn_linf(budget: dict[str, Any]) -> Any:
    return foolbox().attacks.LInfFMNAttack(steps=budget["minimal_steps"])


@_register("hopskipjump", "linf", "blackbox", "HopSkipJump (Chen et al., 2020): decision-based, labels only, Linf")
def _hopskipjump(budget: dict[str, Any]) -> Any:
    return foolbox().attacks.HopSkipJumpAttack(
        steps=budget["blackbox_steps"],
        initial_gradient_eval_steps=50,
        max_gradient_eval_steps=budget["blackbox_queries"],
        constraint="linf",
    )


def _protocol(norm: Norm) -> Attack:
    return Attack(
        f"autoattack-{norm}", norm, "protocol",
        f"AutoAttack (Croce and Hein, 2020), {norm.capitalize()}: APGD-CE, APGD-T, FAB-T, Square (standard) or "
        "APGD-CE and APGD-DLR with 20 EoT passes (rand, used for randomized models)",
    )  # fmt: skip


def _single(stage: str, norm: Norm, description: str) -> Attack:
    return Attack(f"{stage}-{norm}", norm, "fixed", description, stages=(stage,))


for _norm in ("linf", "l2"):
    _native(_protocol(_norm))
    _native(_single("apgd-ce", _norm, f"APGD with cross-entropy (Croce and Hein, 2020), {_norm}, 100 steps"))
    _native(_single("apgd-t", _norm, f"APGD with the targeted DLR loss, 9 target classes, {_norm}"))
    _native(Attack(f"fab-t-{_norm}", _norm, "minimal", f"targeted FAB (Croce and Hein, 2020), 9 target "
                           f"classes, {_norm}, minimal perturbation", stages=("fab-t",)))  # fmt: skip
    _native(_single("square", _norm, f"Square Attack (Andriushchenko et al., 2020), 5,000 queries, {_norm}"))


def decision_starts(fmodel: Any, inputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    """A starting point for each example that the model already misclassifies, found from labels alone:
    the nearest (Linf) other example whose predicted class differs from this example's label, as the
    boundary attack starts (Brendel et al., 2018). Uniform-noise blending, foolbox's default start,
    fails on robust models and stops the whole batch. Also returns which examples have a start: a
    model that predicts one class everywhere leaves that class's examples without one."""
    import torch

    with torch.no_grad():
        preds = fmodel(inputs).argmax(1)
    flat = inputs.flatten(1)
    starts = inputs.clone()
    found = np.zeros(len(labels), dtype=bool)
    for i in range(len(labels)):
        candidates = (preds != labels[i]).nonzero().flatten()
        if len(candidates):
            distance = (flat[candidates] - flat[i]).abs().amax(1)
            starts[i] = inputs[candidates[distance.argmin()]]
            found[i] = True
    return starts, found


def _fixed(built: Any, fmodel: Any, inputs: torch.Tensor, labels: torch.Tensor, correct: np.ndarray,
           epsilons: list[float], *, restarts: int, seed: int, batch_size: int) -> dict[float, np.ndarray]:  # fmt: skip
    """Robust or not per example at each epsilon, from the smallest epsilon up. An example broken at a
    smaller epsilon counts as broken at every larger one (the curve the metric reports is monotone), so
    only the examples still standing are attacked at the next epsilon; misclassified ones never are.
    For a non-robust model most examples fall at the first epsilons, which saves most of the work."""
    import torch

    torch.manual_seed(seed)
    robust, standing = {}, correct.copy()
    for eps in sorted(epsilons):
        for _ in range(restarts):
            todo = np.flatnonzero(standing)
            for start in range(0, len(todo), batch_size):
                rows = todo[start : start + batch_size]
                index = torch.as_tensor(rows, device=inputs.device)
                _, _, success = built(fmodel, inputs[index], labels[index], epsilons=[eps])
                standing[rows[success[0].cpu().numpy()]] = False
        robust[eps] = standing.copy()
    return robust


def perturbation_norm(delta: torch.Tensor, norm: Norm) -> torch.Tensor:
    flat = delta.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


def run_attack(
    attack: Attack,
    module: torch.nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    correct: np.ndarray,
    *,
    bounds: tuple[float, float],
    epsilons: list[float],
    budget: dict[str, Any],
    seed: int,
    batch_size: int,
    broken: dict[float, np.ndarray] | None = None,
    report: Callable[[str], None] | None = None,
) -> Outcome:
    """Run ``attack`` on every example in batches; seeded, so the same call gives the same outcome.
    Torch-native attacks skip the examples ``broken`` already marks as broken at an epsilon, and tell
    ``report`` what runs.

    The module's parameters are frozen meanwhile: foolbox takes gradients with ``loss.backward()``,
    which would otherwise also compute (and accumulate) every weight's gradient, a third of the work."""
    import torch

    from harness.models.base import frozen

    if attack.native and attack.kind == "minimal":
        from harness.attacks.autoattack import smallest

        with frozen(module):
            norms = smallest(attack, module, inputs, labels, correct, bounds=bounds, budget=budget, seed=seed,
                             batch_size=batch_size, report=report)  # fmt: skip
        return Outcome(attack, norms=norms, stages=attack.stages)
    if attack.native:
        from harness.attacks.autoattack import VERSIONS, cascade

        stages = VERSIONS[budget["protocol"]] if attack.kind == "protocol" else attack.stages
        with frozen(module):
            result = cascade(stages, module, inputs, labels, correct, norm=attack.norm, bounds=bounds,
                             epsilons=epsilons, budget=budget, seed=seed, batch_size=batch_size, broken=broken,
                             report=report)  # fmt: skip
        return Outcome(attack, robust=result.robust, stages=stages, broken_by=result.broken_by)
    fb = foolbox()
    fmodel = fb.PyTorchModel(module, bounds=bounds, device=inputs.device)
    assert attack.build is not None
    built = attack.build(budget)
    with frozen(module):
        if attack.kind == "fixed":
            restarts = budget["restarts"] if attack.name.startswith("pgd") else 1
            robust = _fixed(built, fmodel, inputs, labels, correct, epsilons, restarts=restarts, seed=seed,
                            batch_size=batch_size)  # fmt: skip
            return Outcome(attack, robust=robust)
        torch.manual_seed(seed)
        norms = np.zeros(len(labels))  # a misclassified example needs no perturbation
        starts, startable = None, np.ones(len(labels), dtype=bool)
        if attack.kind == "blackbox":
            starts, startable = decision_starts(fmodel, inputs, labels)
        norms[correct & ~startable] = np.inf  # no example of another class to start from: not broken
        todo = np.flatnonzero(correct & startable)
        for start in range(0, len(todo), batch_size):
            rows = todo[start : start + batch_size]
            index = torch.as_tensor(rows, device=inputs.device)
            x, y = inputs[index], labels[index]
            extra = {"starting_points": starts[index]} if starts is not None else {}
            _, clipped, success = built(fmodel, x, y, epsilons=None, **extra)
            found = perturbation_norm(clipped - x, attack.norm).detach().cpu().numpy()
            norms[rows] = np.where(success.cpu().numpy(), found, np.inf)
        return Outcome(attack, norms=norms)
