"""Fashion-MNIST: 28x28 grey images of clothing in 10 classes (Xiao et al., 2017)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from harness.registry import tasks
from harness.tasks.base import DataNotFoundError, Split, Task, fingerprint_arrays, shipped

CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "train-sample": ("train-sample-images-idx3-ubyte.gz", "train-sample-labels-idx1-ubyte.gz"),
    "validation": ("validation-images-idx3-ubyte.gz", "validation-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SHIPPED = ("train-sample", "validation", "test")
# Positions in the publisher's 60,000-image train file of the shipped splits drawn from it (the first
# 5,000 and the next 5,000 of numpy.random.default_rng(0).permutation(60000), each sorted).
INDICES = {"train-sample": "train-sample-indices.txt", "validation": "validation-indices.txt"}
TRAIN_IMAGES = 60000


def train_file_positions(split: str) -> np.ndarray:
    """Where each image of ``split`` is in the publisher's train file. ``train`` is that file less the
    held-out ``validation`` images: the zoo trains on it, and what is fitted after training
    (temperature scaling) fits on images no zoo model has seen."""
    if split == "train":
        return np.setdiff1d(np.arange(TRAIN_IMAGES), train_file_positions("validation"))
    return np.loadtxt(shipped("fashion-mnist", INDICES[split]), dtype=np.int64)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzip or plain) into a uint8 array of its declared shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: header says {shape}, found {array.size} values")
    return array.reshape(shape)


def candidate_dirs() -> list[Path]:
    """Where the Fashion-MNIST train split is looked for, in order."""
    dirs = []
    if env := os.environ.get("HARNESS_DATA"):
        dirs += [Path(env) / "fashion-mnist", Path(env)]
    dirs.append(Path("/usr/share/datasets/fashion-mnist"))
    repo = Path(__file__).resolve().parents[2]
    for base in (Path.cwd(), repo):
        dirs.append(base.parent / "shared" / "data" / "fashion-mnist")
    return dirs


def locate(split: str) -> tuple[Path, Path]:
    images, labels = FILES[split]
    if split in SHIPPED:
        return shipped("fashion-mnist", images), shipped("fashion-mnist", labels)
    for folder in candidate_dirs():
        for suffix in ("", ".gz"):
            img, lab = folder / images.removesuffix(".gz"), folder / labels.removesuffix(".gz")
            img, lab = img.with_name(img.name + suffix), lab.with_name(lab.name + suffix)
            if img.is_file() and lab.is_file():
                return img, lab
    looked = "\n  ".join(str(d) for d in candidate_dirs())
    raise DataNotFoundError(
        f"the Fashion-MNIST {split} split ({images}, {labels}) was not found. Looked in:\n  {looked}\n"
        "Get it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or download the four files "
        "from https://github.com/zalandoresearch/fashion-mnist and set HARNESS_DATA to their folder."
    )


@tasks.register("fashion-mnist", "Fashion-MNIST test split: 10,000 grey 28x28 images, 10 classes (shipped)")
class FashionMNIST(Task):
    name = "fashion-mnist"
    modality = "image"
    classes = CLASSES
    splits = ("train", "train-sample", "validation", "test")
    shipped_train = "train-sample"  # 5,000 of the training images, seeded, shipped: fits on any machine
    input_shape = (1, 28, 28)
    bounds = (0.0, 1.0)
    description = "Fashion-MNIST: Zalando article images, 10 classes, grey 28x28, pixel values in [0, 1]."
    license = "MIT (Zalando SE, 2017)"
    citation = (
        "Xiao, Rasul, Vollgraf. Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning "
        "Algorithms. arXiv:1708.07747, 2017."
    )

    def _load(self, split: str) -> Split:
        import pandas as pd
        import torch

        image_path, label_path = locate(split)
        images, labels = read_idx(image_path), read_idx(label_path)
        where = None if split == "test" else train_file_positions(split)
        if split == "train":
            if images.shape[0] != TRAIN_IMAGES:
                found = f"found {images.shape[0]:,}"
                raise ValueError(f"{image_path}: expected the {TRAIN_IMAGES:,} training images, {found}")
            images, labels = images[where], labels[where]
        if images.shape[1:] != (28, 28) or images.shape[0] != labels.shape[0]:
            raise ValueError(f"{image_path}: expected N x 28 x 28 images matching {label_path}")
        inputs = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
        attributes = pd.DataFrame({"index": np.arange(len(labels))})
        if where is not None:
            attributes["train_index"] = where
        return Split(
            self.name,
            split,
            inputs,
            torch.from_numpy(labels.astype(np.int64)),
            attributes,
            fingerprint_arrays(images, labels, extra=f"{self.name}/{split}"),
        )
