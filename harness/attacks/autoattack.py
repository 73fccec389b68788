"""AutoAttack (Croce and Hein, ICML 2020) as a cascade over the examples still robust, and the
torch-native attacks it is made of, registered by name.

The standard version runs APGD-CE, APGD-T (9 target classes), FAB-T (9 target classes) and Square
(5,000 queries), 100 iterations and one restart each; an example counts as robust at an epsilon only if
every attack failed on it, and each attack runs only on the examples the previous ones left standing.
The rand version (APGD-CE and APGD-DLR, each averaging gradients over 20 forward passes) replaces it
for models whose forward pass is randomized. Across a grid of epsilons, from the smallest up, an
example broken at one epsilon is broken at every larger one, and an example a minimum-norm attack
already broke at an epsilon (passed in as ``broken``) is not attacked there: the curve is monotone and
never above any attack that ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from harness.attacks.adversarial import Attack, Norm
from harness.attacks.apgd import apgd, ce_loss, dlr_loss, top_targets
from harness.attacks.fab import fab_targeted
from harness.attacks.square import square

# stage: (forward, x, y, eps, norm, bounds, budget) -> broken[n]
Stage = Callable[..., torch.Tensor]


def _apgd_ce(forward, x, y, eps, norm, bounds, budget, eot: int = 1) -> torch.Tensor:
    return apgd(forward, x, y, eps=eps, norm=norm, bounds=bounds, steps=budget["apgd_steps"], eot=eot)


def _apgd_dlr(forward, x, y, eps, norm, bounds, budget, eot: int = 1) -> torch.Tensor:
    loss = dlr_loss if _classes(forward, x) >= 3 else ce_loss
    return apgd(forward, x, y, eps=eps, norm=norm, bounds=bounds, steps=budget["apgd_steps"], loss=loss, eot=eot)


def _apgd_t(forward, x, y, eps, norm, bounds, budget) -> torch.Tensor:
    """APGD with the targeted DLR loss against each of the most likely other classes in turn, on the
    examples no earlier target broke (needs 4 classes; with fewer, the untargeted DLR or CE loss)."""
    with torch.no_grad():
        logits = forward(x)
    if logits.shape[1] < 4:
        return _apgd_dlr(forward, x, y, eps, norm, bounds, budget)
    broken = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for target in top_targets(logits, y, budget["target_classes"]):
        rows = (~broken).nonzero().flatten()
        if len(rows) == 0:
            break
        broken[rows] = apgd(forward, x[rows], y[rows], eps=eps, norm=norm, bounds=bounds, steps=budget["apgd_steps"],
                            loss=dlr_loss, target=target[rows])  # fmt: skip
    return broken


def _fab_t(forward, x, y, eps, norm, bounds, budget) -> torch.Tensor:
    found = fab_targeted(forward, x, y, norm=norm, bounds=bounds, targets=budget["target_classes"],
                         steps=budget["fab_steps"], eps=eps)  # fmt: skip
    return found <= eps * (1 + 1e-6)


def _square(forward, x, y, eps, norm, bounds, budget) -> torch.Tensor:
    return square(forward, x, y, eps=eps, norm=norm, bounds=bounds, queries=budget["square_queries"])


def _classes(forward, x) -> int:
    with torch.no_grad():
        return int(forward(x[:1]).shape[1])


def _eot(stage: Stage) -> Stage:
    def averaged(forward, x, y, eps, norm, bounds, budget):
        return stage(forward, x, y, eps, norm, bounds, budget, eot=budget["eot_iterations"])

    return averaged


STAGES: dict[str, Stage] = {
    "apgd-ce": _apgd_ce,
    "apgd-t": _apgd_t,
    "fab-t": _fab_t,
    "square": _square,
    "apgd-ce-eot": _eot(_apgd_ce),
    "apgd-dlr-eot": _eot(_apgd_dlr),
}
VERSIONS = {"standard": ("apgd-ce", "apgd-t", "fab-t", "square"), "rand": ("apgd-ce-eot", "apgd-dlr-eot")}


@dataclass
class Cascade:
    """Per epsilon: robust per example, and the stage that broke each example ('' if none did, 'before'
    if it was already broken: misclassified, by a smaller epsilon or by a minimum-norm attack)."""

    robust: dict[float, np.ndarray]
    broken_by: dict[float, np.ndarray]
    attacked: dict[tuple[float, str], int]  # (eps, stage) -> examples the stage ran on


def cascade(
    stages: tuple[str, ...],
    module: torch.nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    correct: np.ndarray,
    *,
    norm: Norm,
    bounds: tuple[float, float],
    epsilons: list[float],
    budget: dict[str, Any],
    seed: int,
    batch_size: int,
    broken: dict[float, np.ndarray] | None = None,
    report: Callable[[str], None] | None = None,
) -> Cascade:
    """Run ``stages`` in order at each epsilon (smallest first), each on the examples still standing."""
    torch.manual_seed(seed)
    standing = correct.copy()
    out = Cascade({}, {}, {})
    for eps in sorted(epsilons):
        if broken is not None and eps in broken:
            standing &= ~broken[eps]
        by = np.where(standing, "", "before").astype(object)
        for stage in stages:
            todo = np.flatnonzero(standing)
            out.attacked[(eps, stage)] = len(todo)
            for number, start in enumerate(range(0, len(todo), batch_size)):
                if report:
                    report(f"{norm} {eps:g}: {stage} on {len(todo)} still robust, batch {number + 1}/"
                           f"{-(-len(todo) // batch_size)}")  # fmt: skip
                rows = todo[start : start + batch_size]
                index = torch.as_tensor(rows, device=inputs.device)
                hit = STAGES[stage](module, inputs[index], labels[index], eps, norm, bounds, budget).cpu().numpy()
                standing[rows[hit]] = False
                by[rows[hit]] = stage
        out.robust[eps], out.broken_by[eps] = standing.copy(), by
    return out


def smallest(
    attack: Attack,
    module: torch.nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    correct: np.ndarray,
    *,
    bounds: tuple[float, float],
    budget: dict[str, Any],
    seed: int,
    batch_size: int,
    report: Callable[[str], None] | None = None,
) -> np.ndarray:
    """FAB-T's smallest adversarial perturbation per example, every target class run on every correctly
    classified example (0 for misclassified ones, inf where none was found)."""
    torch.manual_seed(seed)
    norms = np.zeros(len(labels))
    todo = np.flatnonzero(correct)
    for number, start in enumerate(range(0, len(todo), batch_size)):
        if report:
            report(f"{attack.name} batch {number + 1}/{-(-len(todo) // batch_size)}")
        rows = todo[start : start + batch_size]
        index = torch.as_tensor(rows, device=inputs.device)
        found = fab_targeted(module, inputs[index], labels[index], norm=attack.norm, bounds=bounds,
                             targets=budget["target_classes"], steps=budget["fab_steps"])  # fmt: skip
        norms[rows] = found.cpu().numpy()
    return norms
