"""Common corruptions (Hendrycks and Dietterich, ICLR 2019), written in torch: batched, on the images'
device, for grey and RGB images of any size, deterministic given a seed.

Parameters per severity 1-5 follow the published ImageNet-C code (``make_imagenet_c.py``, as packaged
in ``imagecorruptions`` 1.1.2). Images are float tensors ``[N, C, H, W]`` in [0, 1]; grey images go
through colour-space corruptions as grey RGB and come back as the mean of the three channels.

Implemented so far: the noise, blur (Gaussian, defocus, zoom), fog, digital (brightness, contrast,
saturate, pixelate, JPEG) corruptions. Still to write: glass and motion blur, snow, frost, spatter,
elastic transform.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable

import torch
from torch.nn import functional as F

Corruption = Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]
CORRUPTIONS: dict[str, Corruption] = {}


def corruption(name: str) -> Callable[[Corruption], Corruption]:
    def add(fn: Corruption) -> Corruption:
        CORRUPTIONS[name] = fn
        return fn

    return add


def corrupt(images: torch.Tensor, name: str, severity: int, seed: int = 0) -> torch.Tensor:
    """``images`` corrupted by ``name`` at ``severity`` (1-5); the same seed gives the same result."""
    if name not in CORRUPTIONS:
        raise KeyError(f"unknown corruption {name!r}; known: {', '.join(sorted(CORRUPTIONS))}")
    if severity not in range(1, 6):
        raise ValueError(f"severity must be 1 to 5, not {severity}")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images [N, 1 or 3, H, W], got {tuple(images.shape)}")
    generator = torch.Generator(device=images.device)
    generator.manual_seed(zlib.crc32(f"{name}/{severity}/{seed}".encode()))
    return CORRUPTIONS[name](images.float(), severity - 1, generator).clamp(0, 1)


# noise -----------------------------------------------------------------------------------------------


def _normal(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)


@corruption("gaussian_noise")
def gaussian_noise(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    return x + _normal(x, g) * [0.08, 0.12, 0.18, 0.26, 0.38][s]


@corruption("shot_noise")
def shot_noise(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    c = [60, 25, 12, 5, 3][s]
    return torch.poisson(x * c, generator=g) / c


@corruption("impulse_noise")
def impulse_noise(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    """Salt and pepper on a share ``amount`` of the values, half each (skimage's ``s&p``)."""
    amount = [0.03, 0.06, 0.09, 0.17, 0.27][s]
    flip = torch.rand(x.shape, generator=g, device=x.device) < amount
    salt = torch.rand(x.shape, generator=g, device=x.device) < 0.5
    return torch.where(flip, salt.to(x.dtype), x)


@corruption("speckle_noise")
def speckle_noise(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    return x + x * _normal(x, g) * [0.15, 0.2, 0.35, 0.45, 0.6][s]


# blur ------------------------------------------------------------------------------------------------


def _filter(x: torch.Tensor, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    """Convolve every channel with one 2-D kernel, padding the border as ``mode`` says."""
    kh, kw = kernel.shape
    n, c, h, w = x.shape
    pad = (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2)
    flat = x.reshape(n * c, 1, h, w)
    if mode == "reflect" and (max(pad) >= h or max(pad) >= w):
        mode = "replicate"  # kernels larger than tiny images: reflection is undefined there
    out = F.conv2d(F.pad(flat, pad, mode=mode), kernel[None, None].to(x))
    return out.reshape(n, c, h, w)


def gaussian_kernel(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    radius = int(truncate * sigma + 0.5)
    r = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(r**2) / (2 * sigma**2))
    k = k / k.sum()
    return (k[:, None] * k[None, :]).float()


@corruption("gaussian_blur")
def gaussian_blur(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    return _filter(x, gaussian_kernel([1, 2, 3, 4, 6][s]), "replicate")  # skimage's mode="nearest"


def disk_kernel(radius: float, alias_blur: float) -> torch.Tensor:
    """The aliased disk of ImageNet-C's defocus blur, smoothed by a small Gaussian."""
    size = max(8, int(radius))
    r = torch.arange(-size, size + 1, dtype=torch.float64)
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    disk = ((xx**2 + yy**2) <= radius**2).double()
    disk = disk / disk.sum()
    ksize = 3 if radius <= 8 else 5
    t = torch.arange(ksize, dtype=torch.float64) - ksize // 2
    g1 = torch.exp(-(t**2) / (2 * alias_blur**2))
    g1 = g1 / g1.sum()
    smooth = F.conv2d(
        F.pad(disk[None, None], [ksize // 2] * 4, mode="reflect"), (g1[:, None] * g1[None, :])[None, None]
    )
    return smooth[0, 0].float()


@corruption("defocus_blur")
def defocus_blur(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    radius, alias = [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)][s]
    return _filter(x, disk_kernel(radius, alias), "reflect")


def _clipped_zoom(x: torch.Tensor, zoom: float) -> torch.Tensor:
    """Zoom into the centre by ``zoom`` (bilinear) and crop back to the image size."""
    h, w = x.shape[2:]
    ch, cw = math.ceil(h / zoom), math.ceil(w / zoom)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[:, :, top : top + ch, left : left + cw]
    zoomed = F.interpolate(crop, size=(round(ch * zoom), round(cw * zoom)), mode="bilinear", align_corners=False)
    top, left = (zoomed.shape[2] - h) // 2, (zoomed.shape[3] - w) // 2
    return zoomed[:, :, top : top + h, left : left + w]


@corruption("zoom_blur")
def zoom_blur(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    start, stop, step = [(1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.02), (1, 1.26, 0.02), (1, 1.31, 0.03)][s]
    zooms = torch.arange(start, stop, step, dtype=torch.float64).tolist()
    out = torch.zeros_like(x)
    for zoom in zooms:
        out += _clipped_zoom(x, zoom)
    return (x + out) / (len(zooms) + 1)


# weather ---------------------------------------------------------------------------------------------


def plasma_fractal(n: int, mapsize: int, wibbledecay: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    """``n`` diamond-square height maps in [0, 1] (ImageNet-C's ``plasma_fractal``, batched)."""
    maps = torch.zeros(n, mapsize, mapsize, dtype=torch.float64, device=device)
    step, wibble = mapsize, 100.0

    def wibbled_mean(total: torch.Tensor) -> torch.Tensor:
        noise = torch.rand(total.shape, generator=g, device=device, dtype=torch.float64) * 2 * wibble - wibble
        return total / 4 + wibble * noise

    while step >= 2:
        half = step // 2
        corners = maps[:, 0::step, 0::step]
        squares = corners + corners.roll(-1, 1)
        squares = squares + squares.roll(-1, 2)
        maps[:, half::step, half::step] = wibbled_mean(squares)
        centres, corners = maps[:, half::step, half::step], maps[:, 0::step, 0::step]
        maps[:, 0::step, half::step] = wibbled_mean(centres + centres.roll(1, 1) + corners + corners.roll(-1, 2))
        maps[:, half::step, 0::step] = wibbled_mean(centres + centres.roll(1, 2) + corners + corners.roll(-1, 1))
        step //= 2
        wibble /= wibbledecay
    low = maps.amin(dim=(1, 2), keepdim=True)
    maps = maps - low
    return maps / maps.amax(dim=(1, 2), keepdim=True)


@corruption("fog")
def fog(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    strength, decay = [(1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)][s]
    n, _, h, w = x.shape
    size = 1 << max(h, w, 2).bit_length() if max(h, w) & (max(h, w) - 1) else max(h, w)
    peak = x.amax(dim=(1, 2, 3), keepdim=True)
    layer = plasma_fractal(n, size, decay, g, x.device)[:, None, :h, :w].to(x.dtype)
    return (x + strength * layer) * peak / (peak + strength)


# digital ---------------------------------------------------------------------------------------------


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, gr, b = x.unbind(1)
    v, _ = x.max(1)
    mn, _ = x.min(1)
    delta = v - mn
    s = torch.where(v > 0, delta / v.clamp_min(1e-12), torch.zeros_like(v))
    safe = delta.clamp_min(1e-12)
    h = torch.where(v == r, (gr - b) / safe, torch.where(v == gr, 2 + (b - r) / safe, 4 + (r - gr) / safe))
    h = torch.where(delta > 0, (h / 6) % 1, torch.zeros_like(h))
    return torch.stack([h, s, v], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x.unbind(1)
    i = torch.floor(h * 6)
    f = h * 6 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.long() % 6
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = torch.zeros_like(x)
    for k, (r, gr, b) in enumerate(choices):
        mask = i == k
        out[:, 0] = torch.where(mask, r, out[:, 0])
        out[:, 1] = torch.where(mask, gr, out[:, 1])
        out[:, 2] = torch.where(mask, b, out[:, 2])
    return out


def _in_hsv(x: torch.Tensor, change: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    grey = x.shape[1] == 1
    rgb = x.expand(-1, 3, -1, -1) if grey else x
    out = hsv_to_rgb(change(rgb_to_hsv(rgb)).clamp(0, 1))
    return out.mean(1, keepdim=True) if grey else out


@corruption("brightness")
def brightness(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    c = [0.1, 0.2, 0.3, 0.4, 0.5][s]
    return _in_hsv(x, lambda hsv: torch.stack([hsv[:, 0], hsv[:, 1], hsv[:, 2] + c], 1))


@corruption("saturate")
def saturate(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    scale, shift = [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)][s]
    return _in_hsv(x, lambda hsv: torch.stack([hsv[:, 0], hsv[:, 1] * scale + shift, hsv[:, 2]], 1))


@corruption("contrast")
def contrast(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    means = x.mean(dim=(2, 3), keepdim=True)
    return (x - means) * [0.4, 0.3, 0.2, 0.1, 0.05][s] + means


@corruption("pixelate")
def pixelate(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    c = [0.6, 0.5, 0.4, 0.3, 0.25][s]
    h, w = x.shape[2:]
    small = F.interpolate(x, size=(max(1, int(h * c)), max(1, int(w * c))), mode="area")
    return F.interpolate(small, size=(h, w), mode="nearest")


@corruption("jpeg_compression")
def jpeg_compression(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    """JPEG at quality 25, 18, 15, 10, 7 through torchvision's libjpeg codec, image by image."""
    quality = [25, 18, 15, 10, 7][s]
    pixels = (x * 255).round().to(torch.uint8).cpu()
    with warnings.catch_warnings():
        # torchvision 0.29 marks its image codecs deprecated in favour of torchcodec (not a dependency)
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import decode_jpeg, encode_jpeg

        out = [decode_jpeg(encode_jpeg(image, quality=quality)) for image in pixels]
    return torch.stack(out).to(x.device, x.dtype) / 255
