"""The corruption registry: each corruption maps a batch ``[N, C, H, W]`` in [0, 1], a severity index
0-4 and the batch's random ``Draws`` to the corrupted batch (clipped to [0, 1] by ``corrupt``)."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import torch


class Draws:
    """Random numbers for a batch, each example's drawn from its own generator (seeded by the
    corruption, the severity, the run's seed and the example's index in its split), so that an example
    is corrupted the same way in any batch, at any batch size and in any subset. Every draw's first
    dimension is the batch's. ``Draws.single`` draws whole shapes from one generator instead (fixed
    textures)."""

    def __init__(self, seeds: Sequence[int], device: torch.device, per_example: bool = True) -> None:
        self.seeds, self.device, self.per_example = list(seeds), device, per_example
        self._generators: list[torch.Generator] | None = None

    @property
    def generators(self) -> list[torch.Generator]:
        """Made at the first draw: a corruption without randomness pays nothing for them."""
        if self._generators is None:
            self._generators = [torch.Generator(device=self.device).manual_seed(seed) for seed in self.seeds]
        return self._generators

    @classmethod
    def for_examples(cls, key: str, indices: Sequence[int], device: torch.device) -> Draws:
        return cls([zlib.crc32(f"{key}/{int(index)}".encode()) for index in indices], device)

    @classmethod
    def single(cls, seed: int, device: torch.device | str = "cpu") -> Draws:
        return cls([seed], torch.device(device), per_example=False)

    def _each(self, shape: tuple[int, ...], draw: Callable[[tuple[int, ...], torch.Generator], torch.Tensor]):
        if not self.per_example:
            return draw(tuple(shape), self.generators[0])
        if not self.seeds:
            return draw((0, *shape[1:]), torch.Generator(device=self.device))
        if shape[0] != len(self.seeds):
            raise ValueError(f"a draw of shape {tuple(shape)} for a batch of {len(self.seeds)} examples")
        return torch.stack([draw(tuple(shape[1:]), g) for g in self.generators])

    def rand(self, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return self._each(shape, lambda s, g: torch.rand(s, generator=g, device=self.device, dtype=dtype))

    def randn(self, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return self._each(shape, lambda s, g: torch.randn(s, generator=g, device=self.device, dtype=dtype))

    def randint(self, low: int, high: int, shape: tuple[int, ...]) -> torch.Tensor:
        return self._each(shape, lambda s, g: torch.randint(low, high, s, generator=g, device=self.device))

    def poisson(self, rates: torch.Tensor) -> torch.Tensor:
        if not self.per_example:
            return torch.poisson(rates, generator=self.generators[0])
        return torch.stack([torch.poisson(r, generator=g) for r, g in zip(rates, self.generators, strict=True)])


Corruption = Callable[[torch.Tensor, int, Draws], torch.Tensor]
CORRUPTIONS: dict[str, Corruption] = {}
FAMILIES: dict[str, str] = {}


def corruption(name: str, family: str) -> Callable[[Corruption], Corruption]:
    def add(fn: Corruption) -> Corruption:
        CORRUPTIONS[name] = fn
        FAMILIES[name] = family
        return fn

    return add


def normal(shape: tuple[int, ...], g: Draws, like: torch.Tensor, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    return g.randn(shape, dtype=like.dtype) * std + mean


def uniform(shape: tuple[int, ...], g: Draws, like: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return g.rand(shape, dtype=like.dtype) * (high - low) + low
