"""Digital corruptions: brightness, contrast, saturate, pixelate, JPEG, elastic transform."""

from __future__ import annotations

import functools
import warnings

import torch
from torch.nn import functional as F

from harness.attacks.corruptions import filters
from harness.attacks.corruptions.base import Draws, corruption, uniform


@corruption("brightness", "digital")
def brightness(x: torch.Tensor, s: int, g: Draws) -> torch.Tensor:
    c = [0.1, 0.2, 0.3, 0.4, 0.5][s]
    return filters.in_hsv(x, lambda hsv: torch.stack([hsv[:, 0], hsv[:, 1], hsv[:, 2] + c], 1))


@corruption("saturate", "digital")
def saturate(x: torch.Tensor, s: int, g: Draws) -> torch.Tensor:
    scale, shift = [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)][s]
    return filters.in_hsv(x, lambda hsv: torch.stack([hsv[:, 0], hsv[:, 1] * scale + shift, hsv[:, 2]], 1))


@corruption("contrast", "digital")
def contrast(x: torch.Tensor, s: int, g: Draws) -> torch.Tensor:
    means = x.mean(dim=(2, 3), keepdim=True)
    return (x - means) * [0.4, 0.3, 0.2, 0.1, 0.05][s] + means


@functools.cache
def box_weights(size: int, out: int) -> torch.Tensor:
    """PIL's BOX downsampling as a matrix [out, size]: each output pixel is the plain mean of the input
    pixels whose centres fall in its span, decided in double precision exactly as PIL's ``Resample.c``
    does, so that pixels on a span's edge go the same way."""
    scale = size / out
    rows = torch.zeros(out, size, dtype=torch.float64)
    for i in range(out):
        centre = (i + 0.5) * scale
        first = max(int(centre - scale * 0.5 + 0.5), 0)
        last = min(int(centre + scale * 0.5 + 0.5), size)
        for j in range(first, last):
            if -0.5 < (j - centre + 0.5) * (1.0 / scale) <= 0.5:
                rows[i, j] = 1.0
    return (rows / rows.sum(1, keepdim=True)).float()


@functools.cache
def nearest_index(out: int, size: int) -> torch.Tensor:
    """PIL's NEAREST resampling: output pixel x reads input pixel int(x * step + step / 2), the position
    summed step by step in double precision as PIL's affine transform does (which decides ties)."""
    step, position, index = size / out, size / out * 0.5, []
    for _ in range(out):
        index.append(min(int(position), size - 1))
        position += step
    return torch.tensor(index)


@corruption("pixelate", "digital")
def pixelate(x: torch.Tensor, s: int, g: Draws) -> torch.Tensor:
    """Down by PIL's BOX filter to a share c of each side, back up by PIL's nearest neighbour."""
    c = [0.6, 0.5, 0.4, 0.3, 0.25][s]
    h, w = x.shape[2:]
    small_h, small_w = max(1, int(h * c)), max(1, int(w * c))
    small = box_weights(h, small_h).to(x) @ x @ box_weights(w, small_w).to(x).T
    small = small.index_select(2, nearest_index(h, small_h).to(x.device))
    return small.index_select(3, nearest_index(w, small_w).to(x.device))


@corruption("jpeg_compression", "digital")
def jpeg_compression(x: torch.Tensor, s: int, g: Draws) -> torch.Tensor:
    """JPEG at quality 25, 18, 15, 10, 7 through torchvision's libjpeg codec, image by image."""
    quality = [25, 18, 15, 10, 7][s]
    pixels = (x * 255).round().to(torch.uint8).cpu()
    with warnings.catch_warnings():
        # torchvision 0.29 marks its image codecs deprecated in favour of torchcodec (not a dependency)
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import decode_jpeg, encode_jpeg

        out = [decode_jpeg(encode_jpeg(image, quality=quality)) for image in pixels]
    return torch.stack(out).to(x.device, x.dtype) / 255


@corruption("elastic_transform", "digital")
def elastic_transform(x: torch.Tensor, s: int, g: Draws) -> torch.Tensor:
    """Each pixel moved by a smoothed random field (imagecorruptions 1.1.2's version): uniform
    displacements up to 0.5% of the height, Gaussian-smoothed with sigma 1% of each side (truncated at
    3 sigma, reflected borders), scaled by alpha; bilinear resampling with reflected borders."""
    alpha = 250 * [0.05, 0.065, 0.085, 0.1, 0.12][s]
    n, _, h, w = x.shape
    reach = h * 0.005
    field = uniform((n, 2, h, w), g, x, -reach, reach)
    dx, dy = (filters.gaussian_filter(field, (0.01 * h, 0.01 * w), "reflect", truncate=3) * alpha).unbind(1)
    rows = torch.arange(h, device=x.device, dtype=x.dtype)[None, :, None] + dy
    cols = torch.arange(w, device=x.device, dtype=x.dtype)[None, None, :] + dx
    grid = torch.stack([(2 * cols + 1) / w - 1, (2 * rows + 1) / h - 1], -1)  # pixel centres, align_corners=False
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
