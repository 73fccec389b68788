"""Common corruptions (Hendrycks and Dietterich, ICLR 2019), written in torch: batched, on the images'
device, for grey and RGB images of any size, deterministic given a seed.

Parameters per severity 1-5 follow the published ImageNet-C code as packaged in ``imagecorruptions``
1.1.2 (``make_imagenet_c.py``); the modules name where they depart from it (frost's textures are made
here). Images are float tensors ``[N, C, H, W]`` in [0, 1]; grey images go through colour-space
corruptions as grey RGB and come back as the mean of the three channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from harness.attacks.corruptions import blur, digital, noise, weather  # noqa: F401  (they register)
from harness.attacks.corruptions.base import CORRUPTIONS, FAMILIES, Corruption, Draws

__all__ = ["CORRUPTIONS", "FAMILIES", "Corruption", "Draws", "corrupt"]


def corrupt(
    images: torch.Tensor, name: str, severity: int, seed: int = 0, indices: Sequence[int] | None = None
) -> torch.Tensor:
    """``images`` corrupted by ``name`` at ``severity`` (1-5). ``indices`` are the examples' indices in
    their split (default 0..N-1): each example draws its randomness from (name, severity, seed, index)
    alone, so it is corrupted identically in any batch, at any batch size and in any subset."""
    if name not in CORRUPTIONS:
        raise KeyError(f"unknown corruption {name!r}; known: {', '.join(sorted(CORRUPTIONS))}")
    if severity not in range(1, 6):
        raise ValueError(f"severity must be 1 to 5, not {severity}")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images [N, 1 or 3, H, W], got {tuple(images.shape)}")
    indices = range(len(images)) if indices is None else indices
    if len(indices) != len(images):
        raise ValueError(f"{len(indices)} indices for {len(images)} images")
    draws = Draws.for_examples(f"{name}/{severity}/{seed}", indices, images.device)
    return CORRUPTIONS[name](images.float(), severity - 1, draws).clamp(0, 1)
