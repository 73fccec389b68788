"""FAB-T, the targeted fast adaptive boundary attack (Croce and Hein, ICML 2020, "Minimally distorted
adversarial examples with a fast adaptive boundary attack"), as AutoAttack runs it: for each of the most
likely other classes, 100 iterations from the clean input without a random start.

Each iteration linearises the decision boundary between the label and the target at the current point,
projects both the current point and the original input onto that hyperplane inside the input box, and
moves to a convex combination of the two projections (weight alpha <= alpha_max on the original's, by
their relative distance), overshooting by eta. Whenever the point is adversarial it is recorded if it is
the closest so far, and pulled back towards the original by beta. The result is a small adversarial
perturbation per example: a minimum-norm attack, so one run gives robustness at every epsilon.

The projection onto {z : w.z = c} inside the box is solved exactly: the optimal change of coordinate i
is sign(w_i) * min(lambda * s_i, m_i) / |w_i| with slope s_i = |w_i| (Linf) or w_i^2 (L2) and m_i its
room to the box times |w_i|; w.d is piecewise linear and increasing in lambda, so one sort finds lambda.
An independent implementation; the published code (fra31/auto-attack, MIT) was read for its constants.
"""

from __future__ import annotations

import torch

from harness.attacks.apgd import Forward, Norm, _flat_norm, _per_example, top_targets

ALPHA_MAX, ETA, BETA = 0.1, 1.05, 0.9


def project_hyperplane(
    t: torch.Tensor, w: torch.Tensor, c: torch.Tensor, norm: Norm, bounds: tuple[float, float]
) -> torch.Tensor:
    """The smallest (Linf or L2) ``d`` per row with ``w.d = c`` and ``t + d`` inside ``bounds``; where
    the box does not reach the hyperplane, the change that gets as close as the box allows."""
    flip = torch.where(c < 0, -1.0, 1.0)
    w, c = w * flip[:, None], c * flip
    room = torch.where(w > 0, bounds[1] - t, t - bounds[0]).clamp(min=0)
    magnitude = w.abs()
    slope = magnitude if norm == "linf" else magnitude**2
    most = magnitude * room  # the largest contribution of each coordinate to w.d
    active = slope > 0
    breaks = torch.where(active, most / slope.clamp(min=1e-30), torch.full_like(most, float("inf")))
    order = breaks.argsort(dim=1)
    b_sorted, m_sorted, s_sorted = (v.gather(1, order) for v in (breaks, most, slope))
    m_sorted = torch.where(torch.isfinite(b_sorted), m_sorted, 0.0)
    saturated = torch.cumsum(m_sorted, 1) - m_sorted  # sum of m over coordinates before k
    remaining = s_sorted.flip(1).cumsum(1).flip(1)  # sum of slopes from k on
    reach = saturated + torch.where(torch.isfinite(b_sorted), b_sorted, 0.0) * remaining
    reach = torch.where(torch.isfinite(b_sorted), reach, saturated)
    k = (reach < c[:, None]).sum(1).clamp(max=t.shape[1] - 1)  # first breakpoint reaching c
    lam = (c - saturated.gather(1, k[:, None]).squeeze(1)) / remaining.gather(1, k[:, None]).squeeze(1).clamp(min=1e-30)
    unreachable = most.sum(1) < c
    lam = torch.where(unreachable, torch.full_like(lam, float("inf")), lam.clamp(min=0))
    step = torch.minimum(lam[:, None] * slope, most) / magnitude.clamp(min=1e-30)
    return torch.where(active, step * w.sign(), 0.0)


def fab_targeted(
    forward: Forward,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: Norm,
    bounds: tuple[float, float],
    targets: int = 9,
    steps: int = 100,
    eps: float | None = None,
) -> torch.Tensor:
    """The smallest adversarial perturbation's norm found per example (inf where none was found) over
    the ``targets`` most likely other classes. With ``eps``, an example is attacked on the next target
    only while nothing within eps was found (AutoAttack's use); without, every target runs on every
    example (minimum norm)."""
    with torch.no_grad():
        logits = forward(x)
    best = torch.where(logits.argmax(1) != y, 0.0, float("inf")).to(x.device)
    for target in top_targets(logits, y, targets):
        todo = best > 0 if eps is None else best > eps
        rows = todo.nonzero().flatten()
        if len(rows):
            found = _fab_run(forward, x[rows], y[rows], target[rows], norm, bounds, steps)
            best[rows] = torch.minimum(best[rows], found)
    return best


def _fab_run(forward: Forward, x0: torch.Tensor, y: torch.Tensor, target: torch.Tensor, norm: Norm,
             bounds: tuple[float, float], steps: int) -> torch.Tensor:  # fmt: skip
    shape, n = x0.shape, len(x0)
    flat0 = x0.flatten(1)
    point = x0.clone()
    best = torch.full((n,), float("inf"), device=x0.device)
    rows = torch.arange(n, device=x0.device)
    for _ in range(steps):
        current = point.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = forward(current)
            gap = logits[rows, target] - logits[rows, y]  # > 0 once the target wins
            (grad,) = torch.autograd.grad(gap.sum(), current)
        with torch.no_grad():
            w = grad.flatten(1)
            flat = point.flatten(1)
            # the linearised boundary: gap + w.(z - point) = 0, i.e. w.d = -gap from each point
            d_point = project_hyperplane(flat, w, -gap.detach(), norm, bounds)
            d_orig = project_hyperplane(flat0, w, -gap.detach() - (w * (flat0 - flat)).sum(1), norm, bounds)
            a1 = _flat_norm(d_point, norm).clamp(min=1e-8)
            a2 = _flat_norm(d_orig, norm).clamp(min=1e-8)
            alpha = (a1 / (a1 + a2)).clamp(0, ALPHA_MAX)[:, None]
            moved = (flat + ETA * d_point) * (1 - alpha) + (flat0 + ETA * d_orig) * alpha
            point = moved.clamp(*bounds).view(shape)
            adversarial = forward(point).argmax(1) != y
            if adversarial.any():
                distance = _flat_norm(point - x0, norm)
                closer = adversarial & (distance < best)
                best[closer] = distance[closer]
                pulled = x0 + BETA * (point - x0)
                point = torch.where(_per_example(adversarial, point), pulled, point)
    return best
