"""Square Attack (Andriushchenko, Croce, Flammarion and Hein, ECCV 2020): a score-based black-box attack
by random search, as AutoAttack runs it (margin loss, 5,000 queries, p_init = 0.8, schedule rescaled to
the query budget). It needs no gradient, so it is not fooled by masked gradients.

Linf: starts from vertical stripes of +-eps and at each query sets a random square window (side from
the schedule of p, the fraction of pixels changed) to +-eps per channel, kept only if the margin loss
drops. L2: starts from a grid of "meta" blocks (two nested-square bumps of opposite sign) scaled to the
sphere of radius eps, and at each query moves the perturbation's mass in one window, together with the
mass of a second window, into a fresh block in the first. An independent implementation from the paper;
the published code (fra31/auto-attack, MIT) was read for its constants.
"""

from __future__ import annotations

import math

import torch

from harness.attacks.apgd import Forward, Norm, _flat_norm, _per_example, project

P_INIT = 0.8
SCHEDULE = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)  # iterations (of 10,000) at which p halves


def fraction(iteration: int, queries: int) -> float:
    """p, the fraction of the image a query changes, halved at each step of the schedule."""
    scaled = int(iteration / queries * 10000)
    return P_INIT / 2 ** sum(scaled > mark for mark in SCHEDULE)


def margin(forward: Forward, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """z_y - max_{j != y} z_j: negative once misclassified."""
    with torch.no_grad():
        logits = forward(x)
    true = logits.gather(1, y[:, None]).squeeze(1)
    return true - logits.scatter(1, y[:, None], float("-inf")).amax(1)


def _signs(*shape: int, device: torch.device) -> torch.Tensor:
    return torch.randint(0, 2, shape, device=device).float() * 2 - 1


def _bumps(rows: int, cols: int, device: torch.device) -> torch.Tensor:
    """Nested squares centred in a rows x cols rectangle, each adding 1 / (k + 1)^2: a smooth bump."""
    bump = torch.zeros(rows, cols, device=device)
    r, c = rows // 2, cols // 2
    for k in range(max(r, c) + 1):
        bump[max(r - k, 0) : r + k + 1, max(c - k, 0) : c + k + 1] += 1.0 / (k + 1) ** 2
    return bump / bump.norm()


def block(s: int, device: torch.device) -> torch.Tensor:
    """The L2 attack's meta-perturbation: a positive bump above a negative one, at random transposed."""
    out = torch.cat([_bumps(s // 2, s, device), -_bumps(s - s // 2, s, device)])
    out = out / out.norm()
    return out.T if torch.rand(()) > 0.5 else out


def square(
    forward: Forward,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: Norm,
    bounds: tuple[float, float],
    queries: int = 5000,
) -> torch.Tensor:
    """Whether each example was misclassified within ``queries`` queries (the first is the start)."""
    n, channels, h, w = x.shape
    pixels = h * w
    if norm == "linf":
        best = (x + eps * _signs(n, channels, 1, w, device=x.device)).clamp(*bounds)
    else:
        best = project(x, x + _l2_start(x, eps), eps, norm, bounds)
    best_margin = margin(forward, best, y)
    for i in range(1, queries):
        todo = (best_margin > 0).nonzero().flatten()
        if len(todo) == 0:
            break
        xs, current = x[todo], best[todo]
        side = max(round(math.sqrt(fraction(i - 1, queries) * pixels)), 1)
        side = min(side, h - 1, w - 1)
        top, left = int(torch.randint(0, h - side, ())), int(torch.randint(0, w - side, ()))
        window = (slice(None), slice(None), slice(top, top + side), slice(left, left + side))
        if norm == "linf":
            candidate = current.clone()
            candidate[window] = xs[window] + eps * _signs(len(todo), channels, 1, 1, device=x.device)
            candidate = project(xs, candidate, eps, norm, bounds)
        else:
            candidate = _l2_query(xs, current, eps, max(side, 3) | 1, bounds)
        value = margin(forward, candidate, y[todo])
        better = value < best_margin[todo]
        best[todo[better]] = candidate[better]
        best_margin[todo[better]] = value[better]
    return best_margin <= 0


def _l2_start(x: torch.Tensor, eps: float) -> torch.Tensor:
    n, channels, h, w = x.shape
    delta = torch.zeros_like(x)
    s = max(h // 5, 1)
    offset = (h - 5 * s) // 2
    for top in range(offset, offset + s * (h // s), s):
        for left in range(offset, offset + s * (w // s), s):
            if top + s <= h and left + s <= w:
                signs = _signs(n, channels, 1, 1, device=x.device)
                delta[:, :, top : top + s, left : left + s] += block(s, x.device) * signs
    return eps * delta / _per_example(_flat_norm(delta, "l2") + 1e-12, delta)


def _l2_query(x: torch.Tensor, current: torch.Tensor, eps: float, side: int,
              bounds: tuple[float, float]) -> torch.Tensor:  # fmt: skip
    """Moves the mass of two random windows into a new block in the first, then rescales to eps."""
    n, channels, h, w = x.shape
    side = min(side, h - 1, w - 1)
    delta = current - x
    (t1, l1), (t2, l2) = [(int(torch.randint(0, h - side, ())), int(torch.randint(0, w - side, ()))) for _ in range(2)]
    first = (slice(None), slice(None), slice(t1, t1 + side), slice(l1, l1 + side))
    second = (slice(None), slice(None), slice(t2, t2 + side), slice(l2, l2 + side))
    mask = torch.zeros_like(delta[:1])
    mask[first], mask[second] = 1.0, 1.0
    in_windows = _per_example(_flat_norm(delta * mask, "l2"), delta)
    total = _per_example(_flat_norm(delta, "l2"), delta)
    old = delta[first]
    fresh = block(side, x.device) * _signs(n, channels, 1, 1, device=x.device)
    fresh = fresh + old / (old.flatten(2).norm(dim=2)[..., None, None] + 1e-12)
    budget = ((eps**2 - total**2).clamp(min=0) / channels + in_windows**2).sqrt()
    fresh = fresh / (fresh.flatten(2).norm(dim=2)[..., None, None] + 1e-12) * budget
    delta = delta.clone()
    delta[second] = 0.0
    delta[first] = fresh
    return (x + eps * delta / _per_example(_flat_norm(delta, "l2") + 1e-12, delta)).clamp(*bounds)
