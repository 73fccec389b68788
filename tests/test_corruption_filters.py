"""The image operations behind the corruptions against the library calls they stand for (scipy,
OpenCV, PIL), on the same inputs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import scipy.ndimage
import torch
from PIL import Image

from harness.attacks.corruptions import corrupt, filters


def random_images(n: int = 3, size: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, size, size + 7, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("mode", ["nearest", "reflect", "mirror"])
@pytest.mark.parametrize("sigma", [0.3, 1.5, 6.0])
def test_gaussian_filter_matches_scipy(mode, sigma):
    images = random_images().double()
    ours = filters.gaussian_filter(images, (sigma, sigma * 0.7), mode, truncate=3)
    for image, out in zip(images, ours, strict=True):
        expected = scipy.ndimage.gaussian_filter(image[0].numpy(), (sigma, sigma * 0.7), mode=mode, truncate=3)
        np.testing.assert_allclose(out[0].numpy(), expected, atol=1e-6)


def edge_maps() -> torch.Tensor:
    return random_images(4, 48, seed=1) > 0.995


def test_distance_matches_opencv_below_the_limit():
    edges = edge_maps()
    ours = filters.distance_to(edges, 20)
    for edge, out in zip(edges, ours, strict=True):
        source = np.where(edge[0].numpy(), 0, 255).astype(np.uint8)
        expected = np.minimum(cv2.distanceTransform(source, cv2.DIST_L2, 5), 20)
        np.testing.assert_allclose(out[0].numpy(), expected, atol=1e-3)


def test_equalize_hist_matches_opencv():
    levels = torch.floor(random_images(3, 32, seed=2) ** 2 * 21)  # few, skewed levels, as spatter's distances
    levels[2] = 7.0  # a constant image stays as it is
    ours = filters.equalize_hist(levels)
    for level, out in zip(levels, ours, strict=True):
        np.testing.assert_array_equal(out[0].numpy(), cv2.equalizeHist(level[0].numpy().astype(np.uint8)))


def test_canny_matches_opencv():
    blobs = filters.gaussian_filter(random_images(4, 64, seed=3), 3)
    levels = torch.floor(torch.where(blobs > 0.52, blobs, 0) * 255)  # spatter's thresholded liquid
    ours = filters.canny(levels, 50, 150)
    for level, out in zip(levels, ours, strict=True):
        expected = cv2.Canny(level[0].numpy().astype(np.uint8), 50, 150) > 0
        assert expected.sum() > 50
        agreement = (out[0].numpy() == expected).mean()
        assert agreement > 0.995, agreement


def test_pixelate_matches_pil():
    pixels = (random_images(2, 45, seed=4) * 255).round()
    for severity in range(1, 6):
        ours = corrupt(pixels / 255, "pixelate", severity)
        c = [0.6, 0.5, 0.4, 0.3, 0.25][severity - 1]
        for image, out in zip(pixels, ours, strict=True):
            pil = Image.fromarray(image[0].numpy().astype(np.uint8))
            w, h = pil.size
            expected = pil.resize((int(w * c), int(h * c)), Image.BOX).resize((w, h), Image.NEAREST)
            # PIL rounds its downsampled image to uint8 (fixed-point weights) before upsampling; the harness
            # keeps floats: one grey level apart at most
            np.testing.assert_allclose(out[0].numpy() * 255, np.asarray(expected), atol=1 + 1e-3)


@pytest.mark.parametrize(("radius", "sigma"), [(10, 3), (15, 8), (20, 15)])
def test_motion_blur_matches_the_reference_for_a_given_angle(radius, sigma):
    from tests.imagecorruptions_shim import imagecorruptions

    images = random_images(3, 36, seed=5)
    angles = torch.tensor([-40.0, 7.5, 33.0])
    ours = filters.motion_blur(images.double(), radius, sigma, angles)
    with imagecorruptions() as module:
        for image, angle, out in zip(images, angles, ours, strict=True):
            expected = module.corruptions._motion_blur(image[0].double().numpy(), radius, sigma, float(angle))
            np.testing.assert_allclose(out[0].numpy(), expected, atol=1e-6)
