"""The corruption registry: each corruption maps a batch ``[N, C, H, W]`` in [0, 1], a severity index
0-4 and a seeded generator to the corrupted batch (clipped to [0, 1] by ``corrupt``)."""

from __future__ import annotations

from collections.abc import Callable

import torch

Corruption = Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]
CORRUPTIONS: dict[str, Corruption] = {}
FAMILIES: dict[str, str] = {}


def corruption(name: str, family: str) -> Callable[[Corruption], Corruption]:
    def add(fn: Corruption) -> Corruption:
        CORRUPTIONS[name] = fn
        FAMILIES[name] = family
        return fn

    return add


def normal(
    shape: tuple[int, ...], g: torch.Generator, like: torch.Tensor, mean: float = 0.0, std: float = 1.0
) -> torch.Tensor:
    return torch.randn(shape, generator=g, device=like.device, dtype=like.dtype) * std + mean


def uniform(shape: tuple[int, ...], g: torch.Generator, like: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return torch.rand(shape, generator=g, device=like.device, dtype=like.dtype) * (high - low) + low
