"""Noise corruptions: Gaussian, shot (Poisson), impulse (salt and pepper), speckle."""

from __future__ import annotations

import torch

from harness.attacks.corruptions.base import Draws, corruption, normal


@corruption("gaussian_noise", "noise")
def gaussian_noise(x: torch.Tensor, s: int, g: Draws) -> torch.Tensor:
    return x + normal(x.shape, g, x, std=[0.08, 0.12, 0.18, 0.26, 0.38][s])


@corruption("shot_noise", "noise")
def shot_noise(x: torch.Tensor, s: int, g: Draws) -> torch.Tensor:
    c = [60, 25, 12, 5, 3][s]
    return g.poisson(x * c) / c


@corruption("impulse_noise", "noise")
def impulse_noise(x: torch.Tensor, s: int, g: Draws) -> torch.Tensor:
    """Salt and pepper on a share ``amount`` of the values, half each (skimage's ``s&p``)."""
    amount = [0.03, 0.06, 0.09, 0.17, 0.27][s]
    flip = g.rand(x.shape) < amount
    salt = g.rand(x.shape) < 0.5
    return torch.where(flip, salt.to(x.dtype), x)


@corruption("speckle_noise", "noise")
def speckle_noise(x: torch.Tensor, s: int, g: Draws) -> torch.Tensor:
    return x + x * normal(x.shape, g, x, std=[0.15, 0.2, 0.35, 0.45, 0.6][s])
