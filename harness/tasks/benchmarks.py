"""Named image benchmarks: ``cifar10``, ``cifar100``, ``mnist`` (torchvision), ``imagenet-val`` and
``imagenet-c`` (ImageNet-C's pre-generated corruptions of it).

They load only data that is already on disk (``root`` option, else ``$HARNESS_DATA``, else
``~/.cache/harness/data``) unless the task option ``download=true`` asks torchvision to fetch it; a
missing data set fails with the command that gets it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from harness.registry import tasks
from harness.tasks.base import DataNotFoundError, Split, Task, TaskError, parse_options, shipped
from harness.tasks.images import (
    EXTENSIONS,
    ImageFiles,
    ImageFolderTask,
    ImageOptions,
    class_folders,
    files_fingerprint,
    image_split,
)
from harness.tasks.index import file_index


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


def imagenet_synsets() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k WordNet ids in the order of timm's and torchvision's class indices (sorted;
    the list timm ships as ``imagenet_synsets.txt``)."""
    return tuple(shipped("imagenet", "synsets.txt").read_text().split())


def solution_labels(csv: Path) -> dict[str, str]:
    """``LOC_val_solution.csv`` (Kaggle's ImageNet localisation challenge): image id -> WordNet id, the
    first word of each PredictionString."""
    import pandas as pd

    frame = pd.read_csv(csv)
    if not {"ImageId", "PredictionString"} <= set(frame.columns):
        raise TaskError(
            f"task imagenet-val: {csv} has columns {list(frame.columns)}; expected ImageId, PredictionString"
        )
    return {str(i): str(p).split()[0] for i, p in zip(frame["ImageId"], frame["PredictionString"], strict=True)}


def devkit_labels(devkit: Path, stems: list[str]) -> dict[str, str]:
    """The devkit's ground truth (``data/ILSVRC2012_validation_ground_truth.txt``: one ILSVRC2012_ID
    per image, in file-name order) through ``data/meta.mat`` (ILSVRC2012_ID -> WordNet id)."""
    from scipy.io import loadmat

    data = devkit / "data" if (devkit / "data").is_dir() else devkit
    truth, meta = data / "ILSVRC2012_validation_ground_truth.txt", data / "meta.mat"
    if not truth.is_file() or not meta.is_file():
        raise TaskError(f"task imagenet-val: {data} lacks ILSVRC2012_validation_ground_truth.txt or meta.mat")
    synsets = loadmat(str(meta), squeeze_me=True)["synsets"]
    wnid = {int(row["ILSVRC2012_ID"]): str(row["WNID"]) for row in synsets}
    ids = [int(line) for line in truth.read_text().split()]
    numbered = {int(stem.rsplit("_", 1)[-1]): stem for stem in stems}
    return {stem: wnid[ids[number - 1]] for number, stem in numbered.items() if number <= len(ids)}


@tasks.register("imagenet-val", "ImageNet-1k validation (class folders or the flat ILSVRC2012_val_* files), 256 -> 224")
class ImageNetVal(ImageFolderTask):
    """The 50,000 validation images, in either common layout: one folder per WordNet id
    (``val/n01440764/...``), or the flat ``ILSVRC2012_val_00000001.JPEG`` files with their labels from
    ``LOC_val_solution.csv`` or the ILSVRC2012 devkit (option ``labels=PATH``, else looked for beside
    the folder). Class indices are those of the 1,000 classes of timm's and torchvision's pretrained
    weights, whichever classes the folder holds; resized to 256 on the shorter side and centre-cropped
    to 224 unless the options say otherwise."""

    argument: ClassVar[str | None] = None  # type: ignore[assignment]
    license = "ImageNet terms of access (non-commercial research)"
    citation = "Russakovsky et al. ImageNet Large Scale Visual Recognition Challenge. IJCV, 2015."

    def __init__(self, root: str | None = None, labels: str | None = None, **options: object) -> None:
        self.name = "imagenet-val"
        folder = Path(root or os.environ.get("HARNESS_IMAGENET") or data_root(None) / "imagenet" / "val").expanduser()
        if not folder.is_dir():
            raise DataNotFoundError(
                f"task imagenet-val: {folder} does not exist. ImageNet cannot be downloaded automatically: get "
                "ILSVRC2012_img_val.tar from https://image-net.org and unpack it (flat, with LOC_val_solution.csv or "
                "the devkit beside it, or sorted into class folders) and pass root=DIR or set HARNESS_IMAGENET."
            )
        self.options = parse_options(ImageOptions, {"size": 224, "resize": 256, "channels": 3, **options}, self.name)
        synsets = imagenet_synsets()
        folders = [p for p in folder.iterdir() if p.is_dir() and WNID.fullmatch(p.name)]
        files = class_folders(folder, self.name) if folders else self._flat(folder, labels)
        unknown = sorted(set(files) - set(synsets))
        if unknown:
            raise TaskError(f"task imagenet-val: {unknown[:3]} are not ImageNet-1k classes (WordNet ids such as "
                            f"{synsets[0]})")  # fmt: skip
        self._setup({"val": folder}, {"val": files}, classes=synsets)
        self.description = f"ImageNet-1k validation images in {folder}: {sum(map(len, files.values()))} files."

    @staticmethod
    def _flat(folder: Path, labels: str | None) -> dict[str, list[str]]:
        names = sorted(n for n in os.listdir(folder) if os.path.splitext(n)[1].lower() in EXTENSIONS)
        stems = [os.path.splitext(n)[0] for n in names]
        if not names:
            raise TaskError(f"task imagenet-val: {folder} holds neither class folders (n01440764/...) nor images")
        near = [Path(labels).expanduser()] if labels else [folder / "LOC_val_solution.csv",
                                                           folder.parent / "LOC_val_solution.csv",
                                                           folder / "ILSVRC2012_devkit_t12",
                                                           folder.parent / "ILSVRC2012_devkit_t12"]  # fmt: skip
        source = next((p for p in near if p.exists()), None)
        if source is None:
            raise TaskError(
                f"task imagenet-val: {folder} holds flat images but no labels: pass labels=PATH to "
                "LOC_val_solution.csv or to the ILSVRC2012 devkit folder (or put either beside the images)"
            )
        truth = devkit_labels(source, stems) if source.is_dir() else solution_labels(source)
        missing = [n for n, stem in zip(names, stems, strict=True) if stem not in truth]
        if missing:
            raise TaskError(f"task imagenet-val: {source} has no label for {len(missing)} images, e.g. {missing[0]}")
        files: dict[str, list[str]] = {}
        for name, stem in zip(names, stems, strict=True):
            files.setdefault(truth[stem], []).append(os.path.join(folder, name))
        return files


WNID = re.compile(r"n\d{8}")


@tasks.register("imagenet-c", "ImageNet-C's pre-generated corruption folders (<corruption>/<severity>/<wnid>/) "
                              "of imagenet-val")  # fmt: skip
class ImageNetC(ImageNetVal):
    """ImageNet validation with ImageNet-C's corrupted copies of it, for users who have them: the folder
    ``corrupted=DIR`` (else ``$HARNESS_IMAGENET_C``) holds ``<corruption>/<severity>/<wnid>/<file>``,
    each a 224-pixel crop of the validation image of that name. The clean split is ``imagenet-val``'s
    (``root=``, ``labels=`` as there); the corruption metric reads each corruption and severity from the
    folder instead of generating it and records it exactly as a generated one, keyed by the folder's
    files instead of the corruption code."""

    def __init__(self, root: str | None = None, corrupted: str | None = None, labels: str | None = None,
                 **options: object) -> None:  # fmt: skip
        folder = Path(corrupted or os.environ.get("HARNESS_IMAGENET_C") or data_root(None) / "imagenet-c")
        if not folder.expanduser().is_dir():
            raise DataNotFoundError(
                f"task imagenet-c: {folder} does not exist. Get ImageNet-C from https://zenodo.org/records/2235448, "
                "unpack it (<corruption>/<severity>/<wnid>/...) and pass corrupted=DIR or set HARNESS_IMAGENET_C."
            )
        super().__init__(root, labels, **options)
        self.name = "imagenet-c"
        self.corrupted_root = folder.expanduser()
        self._corrupted: dict[tuple[str, int], Split] = {}
        self.description += f" Pre-generated corruptions in {self.corrupted_root}."

    def pregenerated(self, corruption: str, severity: int) -> Split:
        """The evaluated split's images under ``corruption`` at ``severity``, from the folder: the same
        examples in the same order, decoded when read, fingerprinted from their bytes."""
        key = (corruption, severity)
        if key in self._corrupted:
            return self._corrupted[key]
        folder = self.corrupted_root / corruption / str(severity)
        if not folder.is_dir():
            held = sorted(p.name for p in self.corrupted_root.iterdir() if p.is_dir())
            raise TaskError(f"task imagenet-c: {folder} does not exist; {self.corrupted_root} holds {held}")
        clean = self.load()
        paths = [os.path.join(folder, self.classes[int(label)], os.path.basename(file))
                 for label, file in zip(clean.labels.tolist(), clean.attributes["file"], strict=True)]  # fmt: skip
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise TaskError(
                f"task imagenet-c: {len(missing)} of the {len(paths)} evaluated images are not in {folder}, "
                f"e.g. {os.path.relpath(missing[0], folder)}"
            )
        entries = file_index(folder, paths)
        bad = next((e for e in entries.values() if isinstance(e, str)), None)
        if bad is not None:
            raise TaskError(f"task imagenet-c: {bad}")
        prefix = len(str(folder)) + 1
        listed = [(p[prefix:], int(k), entries[p]) for p, k in zip(paths, clean.labels.tolist(),
                                                                                    strict=True)]  # fmt: skip
        channels, size = self.input_shape[0], tuple(self.input_shape[1:])
        options = self.options.model_copy(update={"resize": None})  # the files are crops of the task's size
        split = Split(
            self.name, f"{clean.name}/{corruption}@{severity}",
            ImageFiles(paths, channels, size, None, self.options.interpolation),
            clean.labels, clean.attributes,
            files_fingerprint(self.name, f"{corruption}/{severity}", options, listed),  # type: ignore[arg-type]
        )  # fmt: skip
        self._corrupted[key] = split
        return split


@tasks.register("kmnist", "Kuzushiji-MNIST test split: 10,000 grey 28x28 cursive Japanese characters (torchvision)")
class KMNIST(TorchvisionTask):
    """Often an OOD set for Fashion-MNIST models (``--ood-task kmnist``)."""

    name = "kmnist"
    dataset = "KMNIST"
    input_shape = (1, 28, 28)
    classes = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")
    description = "Kuzushiji-MNIST: 10 classes of cursive Japanese (hiragana) characters, grey 28x28."
    license = "CC BY-SA 4.0"
    citation = "Clanuwat et al. Deep Learning for Classical Japanese Literature. arXiv:1812.01718, 2018."
