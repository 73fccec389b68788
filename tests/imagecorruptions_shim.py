"""``imagecorruptions`` 1.1.2 (the packaged ImageNet-C code), importable on today's libraries, as the
independent reference for the corruption tests and bench. Its code is unchanged; the shims only restore
names it imports or calls that newer libraries renamed or dropped:
- ``pkg_resources`` (gone from setuptools >= 81), used only for ``resource_filename`` (its frost files);
- ``scipy.ndimage.interpolation``, an alias newer scipy dropped;
- skimage's ``gaussian(..., multichannel=True)``, now ``channel_axis=-1`` (glass_blur, gaussian_blur);
- ``np.float_``, now ``np.float64`` (fog).
Without the last two shims, 16 of its 19 corruptions run (``WORKING``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import numpy as np

SHIMMED = ("glass_blur", "gaussian_blur", "fog")


def _importable() -> types.ModuleType:
    if "pkg_resources" not in sys.modules:
        shim = types.ModuleType("pkg_resources")

        def resource_filename(package: str, name: str) -> str:
            return os.path.join(os.path.dirname(importlib.util.find_spec(package).origin), name)

        shim.resource_filename = resource_filename
        sys.modules["pkg_resources"] = shim
    import scipy.ndimage

    try:
        import scipy.ndimage.interpolation
    except ImportError:
        sys.modules["scipy.ndimage.interpolation"] = scipy.ndimage
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import imagecorruptions
    return imagecorruptions


@contextmanager
def imagecorruptions() -> Iterator[types.ModuleType]:
    """The module, with the two call shims applied while the context is open."""
    import skimage.filters

    module = _importable()

    def gaussian(image, sigma, multichannel=None, **options):
        return skimage.filters.gaussian(image, sigma=sigma, channel_axis=-1 if multichannel else None, **options)

    with (
        mock.patch.object(module.corruptions, "gaussian", gaussian),
        mock.patch.object(np, "float_", np.float64, create=True),
    ):
        yield module


def working() -> list[str]:
    """The corruptions that run as published."""
    return [name for name in _importable().get_corruption_names("all") if name not in SHIMMED]
