"""Sanity flags of an adversarial evaluation (Carlini et al., 2019, "On Evaluating Adversarial
Robustness"; Croce and Hein, 2020). A flag does not change a number; it travels with it, so that a
robust accuracy that only looks high because the evaluation failed is shown as suspect."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from harness.attacks.active import THRESHOLD

BLACKBOX_MARGIN = 0.002  # 0.2 percentage points


def model_flags(module: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> list[str]:
    """Checks of the model itself, on a batch of inputs."""
    flags = []
    module.eval()
    if any(m.training for m in module.modules()):
        flags.append("training-mode")
    with torch.no_grad():
        first, second = module(inputs), module(inputs)
    if not torch.allclose(first, second, rtol=1e-5, atol=1e-6):
        flags.append("randomized-forward")
    if bool(((first >= 0) & (first <= 1)).all()) and torch.allclose(first.sum(1), torch.ones(len(first)), atol=1e-4):
        flags.append("softmax-output")
    x = inputs.clone().requires_grad_(True)
    loss = F.cross_entropy(module(x), labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x, allow_unused=True)
    zero = torch.ones(len(x), dtype=torch.bool) if grad is None else (grad.flatten(1).abs().amax(1) == 0).cpu()
    if zero.float().mean() > 0.5:
        flags.append("zero-gradients")
    return flags


def result_flags(
    clean: float,
    robust: dict[str, float],
    *,
    blackbox_gap: float | None,
    large_eps_accuracy: float | None,
    chance: float,
    active_pass_rates: tuple[float, ...] | list[float] = (),
) -> list[str]:
    """Checks of the results: ``robust`` maps a slice to its robust accuracy on the same examples as
    ``clean``; ``blackbox_gap`` is (white-box worst case - black-box) robust accuracy on the black-box
    subset, largest over epsilons; ``large_eps_accuracy`` the accuracy under APGD at a huge epsilon;
    ``active_pass_rates`` the binarization tests' pass rates, one per norm."""

    flags = []
    if any(value > clean + 1e-12 for value in robust.values()):
        flags.append("robust-above-clean")
    if blackbox_gap is not None and blackbox_gap > BLACKBOX_MARGIN:
        flags.append("blackbox-stronger")
    if large_eps_accuracy is not None and large_eps_accuracy > max(2 * chance, 0.1):
        flags.append("large-eps-not-broken")
    if any(rate < THRESHOLD for rate in active_pass_rates):
        flags.append("attack-too-weak")
    return flags


def monotone(robust: dict[float, np.ndarray]) -> dict[float, np.ndarray]:
    """Robust at eps implies robust at every smaller eps: an example broken at a small epsilon is broken
    at every larger one (the same perturbation is inside the larger ball)."""
    out, alive = {}, None
    for eps in sorted(robust):
        alive = robust[eps].copy() if alive is None else alive & robust[eps]
        out[eps] = alive
    return out
