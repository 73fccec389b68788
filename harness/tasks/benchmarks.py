"""Named image benchmarks: ``cifar10``, ``cifar100``, ``mnist`` (torchvision) and ``imagenet-val``.

They load only data that is already on disk (``root`` option, else ``$HARNESS_DATA``, else
``~/.cache/harness/data``) unless the task option ``download=true`` asks torchvision to fetch it; a
missing data set fails with the command that gets it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from harness.registry import tasks
from harness.tasks.base import DataNotFoundError, Split, Task, parse_options
from harness.tasks.images import ImageFolderTask, image_split


def data_root(root: str | None) -> Path:
    return Path(root or os.environ.get("HARNESS_DATA") or Path.home() / ".cache" / "harness" / "data").expanduser()


class TorchvisionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    root: str | None = None
    download: bool = False


class TorchvisionTask(Task):
    """A torchvision data set with train and test splits, held as uint8 arrays."""

    dataset: ClassVar[str]
    modality = "image"
    splits = ("train", "test")
    bounds = (0.0, 1.0)

    def __init__(self, **options: object) -> None:
        self._cache = {}
        self.options = parse_options(TorchvisionOptions, options, self.name)
        self.root = data_root(self.options.root)

    def _load(self, split: str) -> Split:
        import torchvision

        cls = getattr(torchvision.datasets, self.dataset)
        try:
            data = cls(str(self.root), train=split == "train", download=self.options.download)
        except RuntimeError as exc:
            raise DataNotFoundError(
                f"task {self.name}: the {split} split was not found under {self.root} ({exc}). Get it with "
                f"`harness run --task {self.name} --task-option download=true ...` (torchvision downloads it "
                f"there once), or set HARNESS_DATA or the task option root=DIR to where it is."
            ) from None
        pixels = np.asarray(data.data)
        pixels = pixels[:, None] if pixels.ndim == 3 else pixels.transpose(0, 3, 1, 2)
        return image_split(self.name, split, np.ascontiguousarray(pixels), np.asarray(data.targets))


@tasks.register("cifar10", "CIFAR-10 test split: 10,000 colour 32x32 images, 10 classes (torchvision)")
class CIFAR10(TorchvisionTask):
    name = "cifar10"
    dataset = "CIFAR10"
    input_shape = (3, 32, 32)
    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    description = "CIFAR-10: 32x32 colour images of 10 object classes."
    license = "unknown (distributed by the University of Toronto for research)"
    citation = "Krizhevsky. Learning Multiple Layers of Features from Tiny Images. 2009."


@tasks.register("cifar100", "CIFAR-100 test split: 10,000 colour 32x32 images, 100 fine classes (torchvision)")
class CIFAR100(TorchvisionTask):
    name = "cifar100"
    dataset = "CIFAR100"
    input_shape = (3, 32, 32)
    description = "CIFAR-100: 32x32 colour images of 100 object classes."
    license = CIFAR10.license
    citation = CIFAR10.citation

    @property
    def classes(self) -> tuple[str, ...]:  # type: ignore[override]
        import torchvision

        try:
            return tuple(torchvision.datasets.CIFAR100(str(self.root), train=False).classes)
        except RuntimeError:
            self.load()  # raises the DataNotFoundError that says how to get it
            raise


@tasks.register("mnist", "MNIST test split: 10,000 grey 28x28 digits (torchvision)")
class MNIST(TorchvisionTask):
    name = "mnist"
    dataset = "MNIST"
    input_shape = (1, 28, 28)
    classes = tuple(str(d) for d in range(10))
    description = "MNIST: handwritten digits, grey 28x28."
    license = "CC BY-SA 3.0"
    citation = "LeCun, Cortes, Burges. The MNIST database of handwritten digits. 1998."


@tasks.register("imagenet-val", "ImageNet-1k validation: a local ImageFolder of 1,000 class folders, 256 -> 224")
class ImageNetVal(ImageFolderTask):
    """The 50,000 validation images sorted into one folder per WordNet id (the order timm's and
    torchvision's classifiers use), resized to 256 on the shorter side and centre-cropped to 224."""

    argument: ClassVar[str | None] = None  # type: ignore[assignment]
    license = "ImageNet terms of access (non-commercial research)"
    citation = "Russakovsky et al. ImageNet Large Scale Visual Recognition Challenge. IJCV, 2015."

    def __init__(self, root: str | None = None, **options: object) -> None:
        folder = Path(root or os.environ.get("HARNESS_IMAGENET") or data_root(None) / "imagenet" / "val").expanduser()
        if not folder.is_dir():
            raise DataNotFoundError(
                f"task imagenet-val: {folder} does not exist. ImageNet cannot be downloaded automatically: get "
                "ILSVRC2012_img_val.tar from https://image-net.org, sort it into one folder per class (e.g. with "
                "the valprep.sh script of the PyTorch ImageNet example) and pass root=DIR or set HARNESS_IMAGENET."
            )
        super().__init__(str(folder), **{"size": 224, "resize": 256, "channels": 3, **options})
        self.name = "imagenet-val"
