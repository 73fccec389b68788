"""Active tests of attack strength: the binarization test (Zimmermann, Brendel, Tramer and Carlini,
NeurIPS 2022, "Increasing confidence in adversarial robustness evaluations").

For one clean example x, the test replaces the model's classification head by a linear readout on the
same features (the input of its last linear layer), trained to tell x and points drawn uniformly inside
the ball of radius 0.95 eps ("inner points") from one point at distance eps ("boundary point"). If the
readout separates them, the test model has an adversarial example inside the eps ball, the boundary
point, by construction; the attack, run with the configuration used on the real model, passes the test
if it finds one. Everything the attack must cope with in the real model (masked gradients, randomness,
non-differentiable parts before the head) is still there. An evaluation whose attacks fail such tests
measures the attack, not the model: the paper treats a test pass rate short of (almost) all tests as a
failed evaluation; the harness flags below ``THRESHOLD``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from harness.attacks.apgd import Norm, project

THRESHOLD = 0.95  # fraction of valid tests the attack must pass
ETA = 0.95  # inner points lie within ETA * eps


def last_linear(module: nn.Module) -> nn.Linear | None:
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


class Features:
    """The input of ``module``'s last linear layer, captured by a forward hook while in use."""

    def __init__(self, module: nn.Module) -> None:
        head = last_linear(module)
        if head is None:
            raise ValueError("the binarization test needs a model whose head is an nn.Linear")
        self.module, self.head, self.value = module, head, None

    def __enter__(self) -> Features:
        self.handle = self.head.register_forward_hook(lambda _m, args, _out: setattr(self, "value", args[0]))
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.remove()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.module(x)
        assert self.value is not None
        return self.value.flatten(1)


class Binarized(nn.Module):
    """The test model: logits (-s/2, s/2) with s the readout's score, positive on the boundary side."""

    def __init__(self, features: Features, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.features, self.weight, self.bias = features, weight, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = self.features(x) @ self.weight + self.bias
        return torch.stack([-score / 2, score / 2], 1)


def _sample(x: torch.Tensor, count: int, eps: float, norm: Norm, bounds: tuple[float, float],
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """``count`` inner points (x first) and one boundary point, all inside the eps ball."""
    shape = (count - 1, *x.shape)
    if norm == "linf":
        delta = (torch.rand(shape, generator=generator) * 2 - 1) * ETA * eps
        corner = torch.randint(0, 2, x.shape, generator=generator).float() * 2 - 1
    else:
        direction = torch.randn(shape, generator=generator)
        direction /= direction.flatten(1).norm(dim=1).view(-1, *[1] * x.dim())
        radius = torch.rand(count - 1, generator=generator) ** (1 / x.numel())
        delta = direction * radius.view(-1, *[1] * x.dim()) * ETA * eps
        corner = torch.randn(x.shape, generator=generator)
        corner /= corner.norm()
    delta, corner = delta.to(x.device), corner.to(x.device)
    inner = torch.cat([x[None], project(x.expand_as(delta), x + delta, ETA * eps, norm, bounds)])
    boundary = project(x[None], (x + 2 * eps * corner)[None], eps, norm, bounds)
    return inner, boundary


def _readout(inner: torch.Tensor, boundary: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """A logistic-regression readout with the boundary point weighted as much as all inner points,
    on standardised features; None unless it separates them all."""
    features = torch.cat([inner, boundary]).double()
    mean, scale = features.mean(0), features.std(0).clamp(min=1e-8)
    z = (features - mean) / scale
    target = torch.zeros(len(z), dtype=torch.float64)
    target[-1] = 1.0
    weights = torch.ones(len(z), dtype=torch.float64)
    weights[-1] = len(inner)
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = (nn.functional.binary_cross_entropy_with_logits(z @ w + b, target, weight=weights)
                + 1e-4 * (w**2).sum())  # fmt: skip
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        score = z @ w + b
        if not (score[-1] > 0 and (score[:-1] < 0).all()):
            return None
        weight = (w / scale).float()
        return weight, (b - (mean / scale * w).sum()).float()


def binarization_tests(
    module: nn.Module,
    inputs: torch.Tensor,
    *,
    eps: float,
    norm: Norm,
    bounds: tuple[float, float],
    attack: Callable[[nn.Module, torch.Tensor, torch.Tensor], bool],
    inner: int = 999,
    seed: int = 0,
) -> list[bool]:
    """Whether the attack passed each valid test (one per input whose readout separates):
    ``attack(test_model, x[None], label 0)`` says whether it found an adversarial example of the test
    model within eps."""
    generator = torch.Generator().manual_seed(seed)
    passed = []
    with Features(module) as features:
        for x in inputs:
            inner_points, boundary = _sample(x, inner, eps, norm, bounds, generator)
            with torch.no_grad():
                fit = _readout(features(inner_points), features(boundary))
            if fit is None:
                continue
            test_model = Binarized(features, *fit).eval()
            passed.append(bool(attack(test_model, x[None], torch.zeros(1, dtype=torch.long, device=x.device))))
    return passed
