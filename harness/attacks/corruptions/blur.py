"""Blur corruptions: Gaussian, defocus, glass, motion, zoom."""

from __future__ import annotations

import torch

from harness.attacks.corruptions import filters
from harness.attacks.corruptions.base import Draws, corruption, uniform


@corruption("gaussian_blur", "blur")
def gaussian_blur(x: torch.Tensor, s: int, g: Draws) -> torch.Tensor:
    return filters.gaussian_filter(x, [1, 2, 3, 4, 6][s])


@corruption("defocus_blur", "blur")
def defocus_blur(x: torch.Tensor, s: int, g: Draws) -> torch.Tensor:
    radius, alias = [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)][s]
    return filters.filter2d(x, filters.disk_kernel(radius, alias), "mirror")


def local_shuffle(n: int, h: int, w: int, delta: int, iterations: int, g: Draws,
                  device: torch.device) -> torch.Tensor:  # fmt: skip
    """Glass blur's pixel shuffle, per image: from the bottom right, every pixel in turn takes the value
    of a random pixel up to ``delta`` away, so values travel further than ``delta``. Returns the source
    index of every pixel, [n, h * w].

    The published code means to swap the two pixels (``x[h, w], x[h', w'] = x[h', w'], x[h, w]``), but
    on an RGB array the right-hand side holds views, so the second assignment writes back the value
    just copied: a copy, not a swap. ImageNet-C was made that way, and so is this.

    The steps are sequential only between pixels less than ``delta + 1`` apart in both directions.
    Pixel (r, c) goes in wave (h - r) * (delta + 1) + (w - c): a step's interacting neighbours that
    come before it in the published order fall in earlier waves, and the pixels of one wave do not
    interact, so each wave is one gather: the published result, exactly, in h * (delta + 1) + w waves
    instead of h * w steps."""
    rows, cols = torch.meshgrid(torch.arange(h - delta, delta, -1), torch.arange(w - delta, delta, -1), indexing="ij")
    rows, cols = rows.reshape(-1).to(device), cols.reshape(-1).to(device)
    wave = (h - rows) * (delta + 1) + (w - cols)
    order = torch.argsort(wave, stable=True)
    waves = torch.split(order, torch.unique_consecutive(wave[order], return_counts=True)[1].tolist())
    target = rows * w + cols
    source = torch.arange(h * w, device=device).repeat(n, 1)
    for _ in range(iterations):
        offsets = g.randint(-delta, delta, (n, len(rows), 2)).permute(1, 2, 0)  # [positions, (dx, dy), n]
        read = (rows[:, None] + offsets[:, 1]) * w + (cols[:, None] + offsets[:, 0])  # [positions, n]
        for step in waves:
            source[:, target[step]] = source.gather(1, read[step].T)
    return source


@corruption("glass_blur", "blur")
def glass_blur(x: torch.Tensor, s: int, g: Draws) -> torch.Tensor:
    sigma, delta, iterations = [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)][s]
    n, c, h, w = x.shape
    x = torch.floor(filters.gaussian_filter(x, sigma).clamp(0, 1) * 255) / 255  # np.uint8 truncates
    source = local_shuffle(n, h, w, delta, iterations, g, x.device)
    x = x.reshape(n, c, h * w).gather(2, source[:, None].expand(n, c, h * w)).reshape(n, c, h, w)
    return filters.gaussian_filter(x, sigma)


@corruption("motion_blur", "blur")
def motion_blur(x: torch.Tensor, s: int, g: Draws) -> torch.Tensor:
    radius, sigma = [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)][s]
    return filters.motion_blur(x, radius, sigma, uniform((x.shape[0],), g, x, -45, 45))


@corruption("zoom_blur", "blur")
def zoom_blur(x: torch.Tensor, s: int, g: Draws) -> torch.Tensor:
    start, stop, step = [(1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.02), (1, 1.26, 0.02), (1, 1.31, 0.03)][s]
    zooms = torch.arange(start, stop, step, dtype=torch.float64).tolist()
    out = torch.zeros_like(x)
    for zoom in zooms:
        out += filters.clipped_zoom(x, zoom)
    return (x + out) / (len(zooms) + 1)
