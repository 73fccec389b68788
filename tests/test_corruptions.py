"""The torch corruptions written so far: shape, range, determinism, severity ordering, grey and RGB."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.nn import functional as F

from harness.attacks.corruptions import CORRUPTIONS, corrupt, hsv_to_rgb, rgb_to_hsv
from harness.tasks import get_task

RANDOM = {"gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"}


def smooth_rgb(n: int = 6, size: int = 64) -> torch.Tensor:
    """Natural-looking test images: upsampled colour noise (so blurs and pixelation have edges to act on)."""
    torch.manual_seed(0)
    return F.interpolate(torch.rand(n, 3, size // 8, size // 8), size=(size, size), mode="bicubic").clamp(0, 1)


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_shape_range_and_determinism(name):
    for images in (smooth_rgb(), get_task("fashion-mnist").load().inputs[:16]):
        out = corrupt(images, name, 3, seed=1)
        assert out.shape == images.shape and out.dtype == torch.float32
        assert float(out.min()) >= 0 and float(out.max()) <= 1
        assert torch.equal(out, corrupt(images, name, 3, seed=1))
        if name in RANDOM:
            assert not torch.equal(out, corrupt(images, name, 3, seed=2))


def mean_change(images: torch.Tensor, name: str) -> list[float]:
    return [float((corrupt(images, name, s) - images).abs().mean()) for s in range(1, 6)]


@pytest.mark.parametrize("name", sorted(set(CORRUPTIONS) - {"saturate"}))
def test_higher_severity_changes_the_image_more(name):
    # 97 pixels: a size that no pixelation factor divides, so resampling aliasing does not reorder
    # pixelate's severities (at 64 pixels, factor 0.5 is an exact 2x2 block and changes less than 0.6).
    # Fog's severities 3 and 4 have the same strength and differ in texture roughness, which on random
    # colour images can go either way; on Fashion-MNIST, the data it serves, it is ordered.
    images = get_task("fashion-mnist").load().inputs[:200] if name == "fog" else smooth_rgb(size=97)
    change = mean_change(images, name)
    assert change[0] > 0
    assert all(later > earlier for earlier, later in itertools.pairwise(change)), change


def test_saturate_desaturates_then_saturates():
    """ImageNet-C's saturate scales saturation by 0.3 and 0.1 (severities 1-2), then by 2, 5 and 20
    (3-5): two directions, each ordered; a grey image has no saturation to scale at 1-3."""
    change = mean_change(smooth_rgb(size=97), "saturate")
    assert change[1] > change[0] > 0 and change[4] > change[3] > change[2] > 0, change
    grey = get_task("fashion-mnist").load().inputs[:16]
    assert max(mean_change(grey, "saturate")[:3]) < 1e-6


def test_bad_arguments():
    images = smooth_rgb(1, 16)
    with pytest.raises(KeyError, match="unknown corruption 'fogg'"):
        corrupt(images, "fogg", 1)
    with pytest.raises(ValueError, match="severity"):
        corrupt(images, "contrast", 6)
    with pytest.raises(ValueError, match=r"expected images \[N, 1 or 3, H, W\]"):
        corrupt(images[0], "contrast", 1)


def test_hsv_round_trip_and_known_values():
    images = smooth_rgb(2, 16)
    assert torch.allclose(hsv_to_rgb(rgb_to_hsv(images)), images, atol=1e-5)
    red = torch.tensor([1.0, 0.0, 0.0]).reshape(1, 3, 1, 1)
    assert torch.allclose(rgb_to_hsv(red).flatten(), torch.tensor([0.0, 1.0, 1.0]))
