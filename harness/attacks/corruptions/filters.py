"""Batched image operations the corruptions are made of, written to match the library calls of the
reference code (scipy.ndimage, skimage, OpenCV) in their border handling and rounding.

Border modes use scipy's names: ``nearest`` (edge repeated; OpenCV's REPLICATE), ``reflect``
(half-sample symmetric, ``d c b a | a b c d``; OpenCV's REFLECT) and ``mirror`` (whole-sample
symmetric, ``d c b | a b c d``; OpenCV's default REFLECT_101).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.nn import functional as F

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as OpenCV's RGB2GRAY


def border_index(n: int, before: int, after: int, mode: str, device: torch.device) -> torch.Tensor:
    """Source index of every position of a length-``n`` axis padded by ``before`` and ``after``."""
    i = torch.arange(-before, n + after, device=device)
    if mode == "nearest" or n == 1:
        return i.clamp(0, n - 1)
    if mode == "reflect":
        i = i % (2 * n)
        return torch.where(i >= n, 2 * n - 1 - i, i)
    if mode == "mirror":
        i = i % (2 * n - 2)
        return torch.where(i >= n, 2 * n - 2 - i, i)
    raise ValueError(f"unknown border mode {mode!r}")


def pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int, mode: str) -> torch.Tensor:
    h, w = x.shape[-2:]
    x = x.index_select(-2, border_index(h, top, bottom, mode, x.device))
    return x.index_select(-1, border_index(w, left, right, mode, x.device))


def filter2d(x: torch.Tensor, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    """Correlate every channel with one 2-D kernel (OpenCV's ``filter2D``), anchored at the centre.
    Long kernels go through the FFT (as OpenCV's do; several times faster than a one-channel
    convolution on the CPU), short ones through a direct convolution."""
    kh, kw = kernel.shape
    n, c, h, w = x.shape
    flat = pad(x.reshape(n * c, 1, h, w), kh // 2, kh - 1 - kh // 2, kw // 2, kw - 1 - kw // 2, mode)
    kernel = kernel.to(x)
    if kh * kw < 16:
        return F.conv2d(flat, kernel[None, None]).reshape(n, c, h, w)
    dims = (-2, -1) if kh > 1 and kw > 1 else (-2,) if kh > 1 else (-1,)
    size = [flat.shape[d] for d in dims]
    kernel_spectrum = torch.fft.rfftn(kernel.flip(0, 1), s=size, dim=dims)  # [kh, 1], [1, kw] broadcast
    spectrum = torch.fft.rfftn(flat, s=size, dim=dims) * kernel_spectrum
    full = torch.fft.irfftn(spectrum, s=size, dim=dims)  # circular convolution; its valid part is exact
    return full[..., kh - 1 :, kw - 1 :].reshape(n, c, h, w)


def gaussian_kernel_1d(sigma: float, truncate: float) -> torch.Tensor:
    radius = int(truncate * sigma + 0.5)
    r = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(r**2) / (2 * sigma**2))
    return (k / k.sum()).float()


def gaussian_filter(x: torch.Tensor, sigma: float | tuple[float, float], mode: str = "nearest",
                    truncate: float = 4.0) -> torch.Tensor:  # fmt: skip
    """scipy.ndimage's ``gaussian_filter`` over the two spatial axes (skimage's ``gaussian``), separably."""
    sy, sx = (sigma, sigma) if isinstance(sigma, int | float) else sigma
    ky, kx = gaussian_kernel_1d(sy, truncate), gaussian_kernel_1d(sx, truncate)
    return filter2d(filter2d(x, ky[:, None], mode), kx[None, :], mode)


def box_blur3(x: torch.Tensor) -> torch.Tensor:
    """OpenCV's ``blur(x, (3, 3))``: the 3x3 mean, borders REFLECT_101."""
    return filter2d(x, torch.full((3, 3), 1 / 9), "mirror")


def disk_kernel(radius: float, alias_blur: float) -> torch.Tensor:
    """The aliased disk of ImageNet-C's defocus blur, smoothed by a small Gaussian (OpenCV's
    ``GaussianBlur`` with a 3x3 or 5x5 window)."""
    size = max(8, int(radius))
    r = torch.arange(-size, size + 1, dtype=torch.float64)
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    disk = ((xx**2 + yy**2) <= radius**2).double()
    disk = disk / disk.sum()
    ksize = 3 if radius <= 8 else 5
    t = torch.arange(ksize, dtype=torch.float64) - ksize // 2
    g1 = torch.exp(-(t**2) / (2 * alias_blur**2))
    g1 = g1 / g1.sum()
    return filter2d(disk[None, None], g1[:, None] * g1[None, :], "mirror")[0, 0].float()


def clipped_zoom(x: torch.Tensor, zoom: float) -> torch.Tensor:
    """Zoom into the centre by ``zoom`` (bilinear) and crop back to the image size."""
    h, w = x.shape[2:]
    ch, cw = math.ceil(h / zoom), math.ceil(w / zoom)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[:, :, top : top + ch, left : left + cw]
    zoomed = F.interpolate(crop, size=(max(h, round(ch * zoom)), max(w, round(cw * zoom))), mode="bilinear",
                           align_corners=False)  # fmt: skip
    top, left = (zoomed.shape[2] - h) // 2, (zoomed.shape[3] - w) // 2
    return zoomed[:, :, top : top + h, left : left + w]


def shifted(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Each image ``n`` moved by (``dy[n]``, ``dx[n]``) pixels, the edge repeated into the gap."""
    n, c, h, w = x.shape
    rows = (torch.arange(h, device=x.device)[None] - dy[:, None]).clamp(0, h - 1)
    cols = (torch.arange(w, device=x.device)[None] - dx[:, None]).clamp(0, w - 1)
    index = (rows[:, :, None] * w + cols[:, None, :]).reshape(n, 1, h * w).expand(n, c, h * w)
    return x.reshape(n, c, h * w).gather(2, index).reshape(n, c, h, w)


def motion_blur(x: torch.Tensor, radius: int, sigma: float, angles: torch.Tensor) -> torch.Tensor:
    """ImageNet-C's motion blur (``imagecorruptions._motion_blur``), one angle in degrees per image:
    the image shifted along the direction in whole pixels, weighted by a one-sided Gaussian. As there,
    the sum stops where the shift leaves the image, so far-reaching kernels darken small images."""
    n, _, h, w = x.shape
    width = 2 * radius + 1
    k = torch.exp(-(torch.arange(width, dtype=torch.float64) ** 2) / (2 * sigma**2))
    k = (k / k.sum()).tolist()
    rad = torch.deg2rad(angles.double())
    sin, cos = torch.sin(rad), torch.cos(rad)
    out = torch.zeros_like(x)
    active = torch.ones(n, dtype=torch.bool, device=x.device)
    for i in range(width):
        dy = -torch.ceil(i * sin - 0.5).long()
        dx = -torch.ceil(i * cos - 0.5).long()
        active &= (dy.abs() < h) & (dx.abs() < w)
        out += (k[i] * active.to(x.dtype))[:, None, None, None] * shifted(x, dy, dx)
    return out


def luminance(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    return sum(weight * x[:, i : i + 1] for i, weight in enumerate(LUMA))


def as_rgb(change: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``change`` applied to RGB images; grey images go through as grey RGB and come back as the mean
    of the three channels (what the reference code gives a grey image it has converted to RGB)."""
    if x.shape[1] == 3:
        return change(x)
    return change(x.expand(-1, 3, -1, -1)).mean(1, keepdim=True)


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


def in_hsv(x: torch.Tensor, change: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    return as_rgb(lambda rgb: hsv_to_rgb(change(rgb_to_hsv(rgb)).clamp(0, 1)), x)


# OpenCV's edge and distance operations, for spatter ---------------------------------------------------

SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def canny(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """OpenCV's ``Canny`` on uint8-valued images ``[N, 1, H, W]`` (3x3 Sobel with replicated borders,
    L1 magnitude, non-maximum suppression in four directions, hysteresis over 8-neighbours)."""
    gx = filter2d(x, SOBEL_X, "nearest")
    gy = filter2d(x, SOBEL_X.T, "nearest")
    mag = gx.abs() + gy.abs()
    m = F.pad(mag, (1, 1, 1, 1))  # zero magnitude outside the image

    def neighbour(dy: int, dx: int) -> torch.Tensor:
        h, w = mag.shape[2:]
        return m[:, :, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    ax, ay = gx.abs(), gy.abs()
    tan22 = math.tan(math.pi / 8)
    horizontal = ay < ax * tan22
    vertical = ay > ax / tan22
    s_pos = (gx * gy) >= 0  # the diagonal through (-1,-1) and (1,1) when the signs agree
    peak_h = (mag > neighbour(0, -1)) & (mag >= neighbour(0, 1))
    peak_v = (mag > neighbour(-1, 0)) & (mag >= neighbour(1, 0))
    peak_d = torch.where(s_pos, (mag > neighbour(-1, -1)) & (mag > neighbour(1, 1)),
                         (mag > neighbour(-1, 1)) & (mag > neighbour(1, -1)))  # fmt: skip
    peak = torch.where(horizontal, peak_h, torch.where(vertical, peak_v, peak_d))
    candidate = peak & (mag > low)
    edges = candidate & (mag > high)
    while True:
        grown = candidate & (F.max_pool2d(edges.float(), 3, 1, 1) > 0)
        if torch.equal(grown, edges):
            return edges
        edges = grown


# OpenCV's 5x5 chamfer weights for DIST_L2 (Borgefors): orthogonal, diagonal, knight's move
CHAMFER = [((dy, dx), {1: 1.0, 2: 1.4, 5: 2.1969}[dy * dy + dx * dx])
           for dy in range(-2, 3) for dx in range(-2, 3) if dy * dy + dx * dx in (1, 2, 5)]  # fmt: skip


def distance_to(zero: torch.Tensor, limit: float) -> torch.Tensor:
    """OpenCV's ``distanceTransform(DIST_L2, 5)`` truncated at ``limit``: chamfer distance from every
    pixel to the nearest True of ``zero``, by relaxation (exact below ``limit``: a shorter path has
    fewer than ``limit`` steps, each at least 1)."""
    d = torch.where(zero, 0.0, math.inf)
    h, w = d.shape[2:]
    for _ in range(math.ceil(limit)):
        p = F.pad(d, (2, 2, 2, 2), value=math.inf)
        relaxed = d
        for (dy, dx), cost in CHAMFER:
            relaxed = torch.minimum(relaxed, p[:, :, 2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w] + cost)
        if torch.equal(relaxed, d):
            break
        d = relaxed
    return d.clamp(max=limit)


def equalize_hist(x: torch.Tensor) -> torch.Tensor:
    """OpenCV's ``equalizeHist`` per image of uint8 values ``[N, 1, H, W]``."""
    n = x.shape[0]
    v = x.reshape(n, -1).long()
    hist = torch.zeros(n, 256, device=x.device).scatter_add_(1, v, torch.ones_like(v, dtype=torch.float32))
    cdf = hist.cumsum(1)
    first = torch.where(cdf > 0, cdf, math.inf).amin(1, keepdim=True)  # count of the smallest value
    total = float(v.shape[1])
    span = total - first
    lut = torch.where(span > 0, torch.round((cdf - first).clamp_min(0) * 255 / span.clamp_min(1)),
                      torch.arange(256, device=x.device, dtype=torch.float32)[None])  # fmt: skip
    return lut.gather(1, v).reshape(x.shape)
