"""Auto-PGD (Croce and Hein, ICML 2020, "Reliable evaluation of adversarial robustness with an ensemble
of diverse parameter-free attacks"), written here in torch from the paper's Algorithm 1.

APGD is PGD with momentum (alpha = 0.75) whose step size starts at 2 * eps and is halved at
checkpoints w_j = ceil(p_j * N) (p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06))
when (1) the loss rose in fewer than rho = 0.75 of the steps since the last checkpoint, or (2) the step
size was not halved at the last checkpoint and the best loss has not risen since; after halving, the
iterate restarts from the best point found. Losses: cross-entropy (APGD-CE), the difference of logits
ratio (DLR, APGD-DLR) and its targeted form (APGD-T, against each of the most likely other classes).

The published code (github.com/fra31/auto-attack, MIT licence, (c) 2020 Francesco Croce) and
torchattacks' port (MIT, (c) 2020 Harry Kim) were read to confirm the schedule's constants; this file is
an independent implementation. One change that does not change a result: an example is dropped from
the batch as soon as it is misclassified, since the attack's only output is whether it was broken.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch.nn import functional as F

Norm = Literal["linf", "l2"]
Forward = Callable[[torch.Tensor], torch.Tensor]
Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]

RHO = 0.75
MOMENTUM = 0.75


def _flat_norm(t: torch.Tensor, norm: Norm) -> torch.Tensor:
    flat = t.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


def _per_example(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *[1] * (like.dim() - 1))


def project(x: torch.Tensor, adv: torch.Tensor, eps: float, norm: Norm, bounds: tuple[float, float]) -> torch.Tensor:
    """``adv`` moved into the eps ball around ``x`` (by clipping for Linf, radial scaling for L2) and
    the input bounds."""
    delta = adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        length = _flat_norm(delta, "l2")
        delta = delta * _per_example(torch.clamp(eps / (length + 1e-12), max=1.0), delta)
    return (x + delta).clamp(*bounds)


def ce_loss(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    return F.cross_entropy(logits, y, reduction="none")


def dlr_loss(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Difference of logits ratio: -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3), invariant to shifts and
    scales of the logits; targeted: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)."""
    ordered = logits.sort(dim=1, descending=True).values
    true = logits.gather(1, y[:, None]).squeeze(1)
    if target is not None:
        scale = ordered[:, 0] - (ordered[:, 2] + ordered[:, 3]) / 2
        return -(true - logits.gather(1, target[:, None]).squeeze(1)) / (scale + 1e-12)
    top_is_true = logits.argmax(1) == y
    other = torch.where(top_is_true, ordered[:, 1], ordered[:, 0])
    return -(true - other) / (ordered[:, 0] - ordered[:, 2] + 1e-12)


def checkpoints(steps: int) -> list[int]:
    """The iterations at which the step size may be halved."""
    p = [0.0, 0.22]
    while p[-1] < 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    return sorted({math.ceil(q * steps - 1e-9) for q in p[1:] if q < 1})


def _random_start(x: torch.Tensor, eps: float, norm: Norm, bounds: tuple[float, float]) -> torch.Tensor:
    t = 2 * torch.rand_like(x) - 1 if norm == "linf" else torch.randn_like(x)
    t = t / _per_example(_flat_norm(t, norm) + 1e-12, t)
    return (x + eps * t).clamp(*bounds)


def _gradient(forward: Forward, adv: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None, loss: Loss,
              eot: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """Mean loss gradient over ``eot`` forward passes (expectation over transformation), the per-example
    loss and the logits of the last pass."""
    grad = torch.zeros_like(adv)
    total = torch.zeros(len(adv), device=adv.device)
    for _ in range(eot):
        point = adv.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = forward(point)
            values = loss(logits, y, target)
            (g,) = torch.autograd.grad(values.sum(), point)
        grad += g
        total += values.detach()
    return grad / eot, total / eot, logits.detach()


def _step(adv: torch.Tensor, previous: torch.Tensor, x: torch.Tensor, grad: torch.Tensor, size: torch.Tensor,
          eps: float, norm: Norm, bounds: tuple[float, float], momentum: float) -> torch.Tensor:  # fmt: skip
    direction = grad.sign() if norm == "linf" else grad / _per_example(_flat_norm(grad, "l2") + 1e-12, grad)
    z = project(x, adv + _per_example(size, adv) * direction, eps, norm, bounds)
    return project(x, adv + momentum * (z - adv) + (1 - momentum) * (adv - previous), eps, norm, bounds)


def apgd(
    forward: Forward,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: Norm,
    bounds: tuple[float, float],
    steps: int = 100,
    loss: Loss = ce_loss,
    target: torch.Tensor | None = None,
    eot: int = 1,
) -> torch.Tensor:
    """One run of APGD from a random start; returns whether each example was misclassified at some
    iterate inside the ball. Seed torch's generator before calling for a reproducible run."""
    broken = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    live = torch.arange(len(x), device=x.device)  # examples not yet broken
    adv = _random_start(x, eps, norm, bounds)
    grad, values, logits = _gradient(forward, adv, y, target, loss, eot)
    broken[live[logits.argmax(1) != y]] = True
    size = torch.full((len(x),), 2.0 * eps, device=x.device)
    best, best_value, best_grad = adv.clone(), values.clone(), grad.clone()
    previous = adv.clone()
    marks = set(checkpoints(steps))
    last_mark, rises = 0, torch.zeros(len(x), device=x.device)
    value_at_mark = best_value.clone()
    halved_at_mark = torch.ones(len(x), dtype=torch.bool, device=x.device)
    last_value = values.clone()
    xs, ys, ts = x, y, target
    for i in range(steps):
        keep = ~broken[live]
        if not keep.all():  # drop broken examples from every per-example state
            live, xs, ys, adv, previous, grad, size = (t[keep] for t in (live, xs, ys, adv, previous, grad, size))
            best, best_value, best_grad, rises = (t[keep] for t in (best, best_value, best_grad, rises))
            value_at_mark, halved_at_mark, last_value = (t[keep] for t in (value_at_mark, halved_at_mark, last_value))
            ts = ts[keep] if ts is not None else None
        if len(live) == 0:
            break
        with torch.no_grad():
            new = _step(adv, previous, xs, grad, size, eps, norm, bounds, MOMENTUM if i > 0 else 1.0)
        previous, adv = adv, new
        grad, values, logits = _gradient(forward, adv, ys, ts, loss, eot)
        broken[live[logits.argmax(1) != ys]] = True
        rises += (values > last_value).float()
        last_value = values
        improved = values > best_value
        best[improved], best_value[improved], best_grad[improved] = adv[improved], values[improved], grad[improved]
        if i + 1 in marks:
            oscillating = rises <= RHO * (i + 1 - last_mark)
            stalled = ~halved_at_mark & (best_value <= value_at_mark)
            halve = oscillating | stalled
            size[halve] /= 2
            adv[halve], grad[halve] = best[halve], best_grad[halve]
            halved_at_mark, value_at_mark = halve, best_value.clone()
            rises.zero_()
            last_mark = i + 1
    return broken


def top_targets(logits: torch.Tensor, y: torch.Tensor, count: int) -> list[torch.Tensor]:
    """The ``count`` most likely classes other than the label, per example, most likely first (the
    targets of APGD-T and FAB-T)."""
    order = logits.argsort(dim=1, descending=True)
    others = [order[i][order[i] != y[i]] for i in range(len(y))]
    stacked = torch.stack(others) if others else order[:, 1:]
    return [stacked[:, k] for k in range(min(count, stacked.shape[1]))]
