"""The 19 torch corruptions: shape, range, determinism, severity ordering, grey and RGB."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.nn import functional as F

from harness.attacks.corruptions import CORRUPTIONS, Draws, corrupt
from harness.attacks.corruptions.filters import hsv_to_rgb, rgb_to_hsv
from harness.tasks import get_task

DETERMINISTIC = {"gaussian_blur", "defocus_blur", "zoom_blur", "brightness", "saturate", "contrast", "pixelate",
                 "jpeg_compression"}  # fmt: skip


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
        if name not in DETERMINISTIC:
            assert not torch.equal(out, corrupt(images, name, 3, seed=2))


def draws(n: int) -> Draws:
    """The same random draws for every call (one seed per example)."""
    return Draws.for_examples("test", range(n), torch.device("cpu"))


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_an_example_is_corrupted_alike_in_any_batch_and_subset(name):
    """Bytes identical whether 40 images go in batches of 7 or all at once, or a subset is corrupted:
    each example's randomness comes from its own index (``indices``)."""
    images = get_task("fashion-mnist").load().inputs[:40]
    whole = (corrupt(images, name, 4, seed=3) * 255).round().to(torch.uint8)
    batches = [(corrupt(images[i : i + 7], name, 4, seed=3, indices=range(i, min(i + 7, 40))) * 255).round()
               for i in range(0, 40, 7)]  # fmt: skip
    assert torch.equal(torch.cat(batches).to(torch.uint8), whole)
    some = [2, 17, 31]
    part = (corrupt(images[some], name, 4, seed=3, indices=some) * 255).round().to(torch.uint8)
    assert torch.equal(part, whole[some])


def mean_change(images: torch.Tensor, name: str) -> list[float]:
    return [float((corrupt(images, name, s) - images).abs().mean()) for s in range(1, 6)]


def signal_lost(clean: torch.Tensor, corrupted: torch.Tensor) -> float:
    """1 - the Pearson correlation of corrupted and clean pixels, averaged over images."""
    a, b = clean.flatten(1), corrupted.flatten(1)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return float(1 - ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).mean())


# Fog and frost blend a layer into the image: at a higher severity less of the image is left, but the
# mean absolute change can shrink where the image removed and the layer added cancel (frost's
# severities 3 and 4 add the same frost and keep 0.7 and 0.65 of the image). For them the test
# measures the share of the image lost (1 - correlation with the clean image) before the final clip to
# [0, 1]: on bright images the clip saturates more pixels at severity 3 than at 4 and swaps the two
# (on 60 such images: 0.1068 and 0.1057 after the clip, 0.0747 and 0.0845 before).
BLENDS = {"fog", "frost"}


@pytest.mark.parametrize("name", sorted(set(CORRUPTIONS) - {"saturate", "glass_blur"}))
def test_higher_severity_changes_the_image_more(name):
    # 97 pixels: a size that no pixelation factor divides, so resampling aliasing does not reorder
    # pixelate's severities (at 64 pixels, factor 0.5 is an exact 2x2 block and changes less than 0.6).
    # The same random draws at every severity (one generator seed), so only the severity differs.
    images = smooth_rgb(size=97)
    outs = [CORRUPTIONS[name](images, s, draws(len(images))) for s in range(5)]
    outs = outs if name in BLENDS else [out.clamp(0, 1) for out in outs]
    if name in BLENDS:
        change = [signal_lost(images, out) for out in outs]
    else:
        change = [float((out - images).abs().mean()) for out in outs]
    assert change[0] > 0
    assert all(later > earlier for earlier, later in itertools.pairwise(change)), change


def test_glass_blur_orders_its_severities_in_two_steps():
    """ImageNet-C's glass blur trades blur, reach and passes per severity: (sigma, delta, passes) =
    (0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2). Two passes of reach 1 move pixels
    more than one of reach 2, and three of reach 2 more than two of reach 3, so the published severities
    are ordered only in steps: 3-5 change the image more than 1-2, and 5 the most (the reference
    implementation gives the same: tests/test_corruption_reference.py)."""
    images = smooth_rgb(size=97)
    outs = [CORRUPTIONS["glass_blur"](images, s, draws(len(images))) for s in range(5)]
    change = [float((out - images).abs().mean()) for out in outs]
    assert min(change[2:]) > max(change[:2]) > 0 and change[4] == max(change), change


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


def test_glass_blur_waves_give_the_sequential_result():
    """The published loop, pixel by pixel, on the same random offsets: the wave schedule must agree."""
    from harness.attacks.corruptions.blur import local_shuffle

    def sequential(n, h, w, delta, iterations, g):
        source = torch.arange(h * w).repeat(n, 1)
        images = torch.arange(n)
        positions = [(row, col) for row in range(h - delta, delta, -1) for col in range(w - delta, delta, -1)]
        for _ in range(iterations):
            offsets = torch.randint(-delta, delta, (n, len(positions), 2), generator=g).permute(1, 2, 0)
            for (row, col), (dx, dy) in zip(positions, offsets, strict=True):
                source[:, row * w + col] = source[images, (row + dy) * w + (col + dx)]
        return source

    for n, h, w, delta, iterations in [(3, 28, 28, 1, 2), (4, 32, 40, 2, 3), (2, 30, 25, 4, 2), (5, 28, 28, 3, 2)]:
        expected = sequential(n, h, w, delta, iterations, torch.Generator().manual_seed(1))
        waves = local_shuffle(n, h, w, delta, iterations, Draws.single(1), torch.device("cpu"))
        assert torch.equal(waves, expected)
