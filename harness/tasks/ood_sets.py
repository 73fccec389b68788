"""Out-of-distribution sets: real handwritten digits (scikit-learn's, near-OOD for Fashion-MNIST), noise
images (far-OOD) of any image task's shape, and German Credit's applicants in Adult's features. Their
labels are their own classes (digits) or one class (noise, German rows): detection ignores them."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from harness.registry import tasks
from harness.tasks.base import Split, Task, TaskError, fingerprint_arrays, parse_options
from harness.tasks.tabular import TabularSchema, TabularTask, age_group


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


MARITAL = {"A93": "Never-married", "A95": "Never-married"}  # single; the other codes join two of Adult's statuses


@tasks.register("german-as-adult", "German Credit's 1,000 applicants in Adult's features (an OOD set for Adult)")
class GermanAsAdult(TabularTask):
    """The 1,000 German Credit applicants written in Adult's census features as far as a mapping is honest,
    the rest missing (NaN: the model fills it as it fills Adult's own missing values): ``age``;
    ``sex`` and, where the personal-status code names one status (single), ``marital-status`` from
    that code (A91-A95); ``native-country`` Germany for applicants who are not foreign workers (the
    foreign workers' country is unknown). Workclass, education, occupation, relationship, race,
    capital gains and losses, hours and the census weight have no counterpart. Real rows of another
    population (West Germany, 1973-75, against the 1994 US census): the labels (all 0) mean nothing."""

    name = "german-as-adult"
    classes = ("<=50K", ">50K")
    splits = ("test",)
    sensitive = ("sex", "age_group")
    description = "German Credit's applicants in Adult's features (age, sex, single, Germany); the rest missing."
    license = "CC BY 4.0"
    citation = "Hofmann. Statlog (German Credit Data). UCI Machine Learning Repository, 1994. doi:10.24432/C5NC77"

    @property
    def schema(self) -> TabularSchema:  # type: ignore[override]
        from harness.tasks.adult import Adult

        return Adult().schema

    def _load(self, split: str) -> Split:
        import pandas as pd

        from harness.tasks.german_credit import GermanCredit, read_german

        german, codes = read_german(), GermanCredit().codes["status_sex"]
        sex = german["status_sex"].map(lambda code: str(codes[code]).split(":")[0].strip().capitalize())
        frame = pd.DataFrame({column: pd.Series(np.nan, index=german.index, dtype=object)
                              for column in self.schema.columns})  # fmt: skip
        frame["age"] = german["age"]
        frame["sex"] = sex
        frame["marital-status"] = german["status_sex"].map(MARITAL)
        frame["native-country"] = german["foreign_worker"].map({"A202": "Germany"})
        attributes = pd.DataFrame({"sex": sex, "age_group": age_group(german["age"]), "age": german["age"]})
        return self.split_from_frame(split, frame, np.zeros(len(german), dtype=np.int64), attributes)
