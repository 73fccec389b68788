"""Out-of-distribution sets for image tasks: real handwritten digits (scikit-learn's, near-OOD for
Fashion-MNIST) and noise images (far-OOD) of any image task's shape. Their labels are their own
classes (digits) or one class (noise): detection ignores them."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from harness.registry import tasks
from harness.tasks.base import Split, Task, TaskError, fingerprint_arrays, parse_options


def _split(task: Task, images: np.ndarray, labels: np.ndarray) -> Split:
    import pandas as pd
    import torch

    return Split(
        task.name, task.eval_split, torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64)),
        pd.DataFrame({"index": np.arange(len(labels))}), fingerprint_arrays(images, labels, extra=task.name),
    )  # fmt: skip


@tasks.register("sklearn-digits", "scikit-learn's 1,797 handwritten digits (UCI), as 28x28 MNIST-style images")
class SklearnDigits(Task):
    """The 8x8 digits that scikit-learn ships (``sklearn.datasets.load_digits``: the UCI optical
    recognition of handwritten digits set, 16 grey levels), ink bright on black, upsampled bilinearly
    to 20x20 and centred in 28x28 as MNIST lays its digits out; in [0, 1]."""

    name = "sklearn-digits"
    modality = "image"
    classes = tuple(str(d) for d in range(10))
    splits = ("test",)
    input_shape = (1, 28, 28)
    bounds = (0.0, 1.0)
    description = "Handwritten digits (scikit-learn's UCI set), 1,797 grey images upsampled to MNIST's 28x28 layout."
    license = "CC BY 4.0 (UCI Machine Learning Repository)"
    citation = "Alpaydin and Kaynak. Optical Recognition of Handwritten Digits. UCI Machine Learning Repository, 1998."

    def _load(self, split: str) -> Split:
        import torch
        from sklearn.datasets import load_digits
        from torch.nn import functional as F

        digits = load_digits()
        small = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
        grown = F.interpolate(small, size=(20, 20), mode="bilinear", align_corners=False).clamp(0, 1)
        images = F.pad(grown, (4, 4, 4, 4)).numpy()
        return _split(self, images, digits.target)


class NoiseOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    shape: tuple[int, ...] = Field((1, 28, 28), description="one image's [C, H, W]")
    examples: int = Field(2000, ge=1)
    seed: int = 0


@tasks.register("noise", "noise:uniform or noise:gaussian: noise images of a given shape (far-OOD)")
class Noise(Task):
    """Seeded noise images in [0, 1]: ``uniform`` (each pixel uniform) or ``gaussian`` (each pixel
    N(0.5, 0.25^2), clipped); options ``shape`` (set to the evaluated task's by the ood metric),
    ``examples``, ``seed``."""

    argument: ClassVar[str] = "<uniform|gaussian>"
    modality = "image"
    classes = ("noise",)
    splits = ("test",)
    bounds = (0.0, 1.0)
    license = "generated"
    fits_any_shape: ClassVar[bool] = True

    def __init__(self, kind: Literal["uniform", "gaussian"] | str, **options: object) -> None:
        super().__init__()
        if kind not in ("uniform", "gaussian"):
            raise TaskError(f"task noise:{kind}: expected noise:uniform or noise:gaussian")
        self.kind, self.name = kind, f"noise:{kind}"
        self.options = parse_options(NoiseOptions, options, self.name)
        self.input_shape = tuple(self.options.shape)
        self.description = f"{self.options.examples} images of {kind} noise, {'x'.join(map(str, self.input_shape))}."

    def _load(self, split: str) -> Split:
        rng = np.random.default_rng(self.options.seed)
        shape = (self.options.examples, *self.input_shape)
        if self.kind == "uniform":
            images = rng.random(shape, dtype=np.float32)
        else:
            images = np.clip(rng.normal(0.5, 0.25, shape), 0, 1).astype(np.float32)
        return _split(self, images, np.zeros(self.options.examples))
