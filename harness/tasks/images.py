"""Image tasks from folders of files: ``imagefolder:<dir>`` and the shared pieces of image tasks.

An ImageFolder holds one sub-folder per class (torchvision's convention), or one such folder per split
(``train/``, ``val/``, ``test/``). Images reach models as float NCHW tensors in [0, 1]; the size and
channels are declared as options or inferred (every image the same size; grey when every image is).
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.registry import tasks
from harness.tasks.base import Split, Task, TaskError, fingerprint_arrays, parse_options
from harness.tasks.index import Entry, file_index

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from harness.decoding import Decoding

EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's
SPLIT_DIRS = ("train", "val", "validation", "test")


class ImageOptions(BaseModel):
    """How files become tensors: ``size`` is the final [H, W] (or one side of a square); ``resize`` the
    shorter side before a centre crop to ``size`` (ImageNet's 256 then 224); ``channels`` 1 or 3."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    size: tuple[int, int] | None = None
    resize: int | None = Field(None, ge=1)
    channels: int | None = None
    interpolation: Literal["bilinear", "bicubic"] = Field("bilinear", description="resampling of the resize")
    split: str | None = Field(None, description="the split evaluated by default")
    skip_unreadable: bool = Field(False, description="leave out files PIL cannot read (listed in each job's spec)")

    @field_validator("size", mode="before")
    @classmethod
    def _square(cls, value: object) -> object:
        return (value, value) if isinstance(value, int) else value

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: int | None) -> int | None:
        if value not in (None, 1, 3):
            raise ValueError("channels is 1 (grey) or 3 (RGB)")
        return value


def to_array(image: Image.Image, channels: int, size: tuple[int, int] | None, resize: int | None,
             interpolation: str = "bilinear") -> np.ndarray:  # fmt: skip
    """One PIL image as uint8 [C, H, W]: converted, resized (shorter side to ``resize`` then a centre
    crop to ``size``, or straight to ``size``) with antialiased bilinear (or bicubic) interpolation."""
    from PIL import Image

    method = Image.Resampling.BICUBIC if interpolation == "bicubic" else Image.Resampling.BILINEAR
    image = image.convert("L" if channels == 1 else "RGB")
    if resize is not None:
        w, h = image.size
        scale = resize / min(w, h)
        image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), method)
    if size is not None and image.size != (size[1], size[0]):
        if resize is not None:
            w, h = image.size
            left, top = (w - size[1]) // 2, (h - size[0]) // 2
            image = image.crop((left, top, left + size[1], top + size[0]))
        else:
            image = image.resize((size[1], size[0]), method)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def image_split(task: str, split: str, pixels: np.ndarray, labels: np.ndarray, extra: dict | None = None) -> Split:
    """A split from uint8 [N, C, H, W] pixels and integer labels."""
    import pandas as pd
    import torch

    attributes = pd.DataFrame({"index": np.arange(len(labels)), **(extra or {})})
    return Split(
        task,
        split,
        torch.from_numpy(pixels).float().div_(255),
        torch.from_numpy(labels.astype(np.int64)),
        attributes,
        fingerprint_arrays(pixels, labels, extra=f"{task}/{split}"),
    )


def infer_format(entries: dict[str, Entry | str], options: ImageOptions, where: str) -> tuple[int, tuple[int, int]]:
    """Channels and size: declared, or read from the files' headers (grey if all are, one common size;
    under ``resize`` alone, that size with its shorter side resized)."""
    sizes, grey = Counter(), 0
    for entry in entries.values():
        if isinstance(entry, str):
            raise TaskError(f"{where}: {entry}")
        sizes[(entry.height, entry.width)] += 1
        grey += entry.grey
    channels = options.channels or (1 if grey == len(entries) else 3)
    if options.size is not None:
        return channels, options.size
    if len(sizes) > 1:
        shown = ", ".join(f"{h}x{w}" for (h, w), _ in sizes.most_common(3))
        raise TaskError(
            f"{where}: the images have {len(sizes)} different sizes ({shown}, ...); "
            "declare the size a model sees with the task option size=H or size=[H, W]"
        )
    h, w = next(iter(sizes))
    if options.resize is not None:
        scale = options.resize / min(h, w)
        h, w = max(1, round(h * scale)), max(1, round(w * scale))
    return channels, (h, w)


class ImageFiles:
    """A dataset of image files decoded when read (in a DataLoader's workers): uint8 [C, H, W]."""

    def __init__(self, paths: list[str], channels: int, size: tuple[int, int], resize: int | None,
                 interpolation: str = "bilinear") -> None:  # fmt: skip
        self.paths, self.channels, self.size, self.resize = list(paths), channels, tuple(size), resize
        self.interpolation = interpolation

    def __len__(self) -> int:
        return len(self.paths)

    def redecoded(self, decoding: Decoding) -> ImageFiles:
        return ImageFiles(self.paths, self.channels, decoding.size, decoding.resize, decoding.interpolation)

    def __getitem__(self, i: int) -> torch.Tensor:
        import torch
        from PIL import Image

        with Image.open(self.paths[i]) as image:
            array = to_array(image, self.channels, self.size, self.resize, self.interpolation)
        if array.shape[1:] != tuple(self.size):
            raise TaskError(
                f"{self.paths[i]} is {array.shape[2]}x{array.shape[1]} once decoded, the task declares "
                f"{self.size[1]}x{self.size[0]}; declare the size with the task option size=H or size=[H, W]"
            )
        return torch.from_numpy(np.ascontiguousarray(array))


def files_fingerprint(name: str, split: str, options: ImageOptions, files: list[tuple[str, int, Entry]]) -> str:
    """The hash of a file-backed split without decoding it: each file's path, label, size and byte
    hash, and the decoding options."""
    digest = hashlib.sha256(f"{name}/{split}/{options.model_dump_json()}".encode())
    for relative, label, entry in files:
        digest.update(f"\0{relative}\0{label}\0{entry.size}\0{entry.digest}".encode())
    return digest.hexdigest()[:16]


def image_files(folder: str) -> list[str]:
    """The image files under ``folder`` (recursively, not into linked folders), in the order of their
    path components (``pathlib``'s order), as strings: at 50,000 files pathlib objects cost seconds."""
    found = [os.path.join(top, name) for top, _, names in os.walk(folder)
             for name in names if os.path.splitext(name)[1].lower() in EXTENSIONS]  # fmt: skip
    return sorted(found, key=lambda path: path.split(os.sep))


def class_folders(root: Path, where: str) -> dict[str, list[str]]:
    """Class name -> its image files, for a folder of class sub-folders."""
    classes = {}
    with os.scandir(root) as entries:
        folders = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    for name in folders:
        files = image_files(os.path.join(root, name))
        if files:
            classes[name] = files
    if len(classes) < 2:
        raise TaskError(
            f"{where}: {root} is not an ImageFolder: expected one sub-folder of images per class "
            f"(at least 2, e.g. {root}/cat/1.png, {root}/dog/2.png), found {len(classes)} with images"
        )
    return classes


@tasks.register("imagefolder", "imagefolder:<dir>: a class per sub-folder (or train/ val/ test/ of them)")
class ImageFolderTask(Task):
    """Images in class sub-folders; options ``size``, ``resize``, ``channels``, ``split``."""

    argument: ClassVar[str] = "<dir>"
    modality = "image"
    bounds = (0.0, 1.0)

    def __init__(self, folder: str, **options: object) -> None:
        self.name = f"imagefolder:{folder}"
        self.options = parse_options(ImageOptions, options, self.name)
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise TaskError(f"task {self.name}: {root} is not a folder (expected class sub-folders of images)")
        present = [d for d in SPLIT_DIRS if (root / d).is_dir()]
        roots = {d: root / d for d in present} if present else {"test": root}
        self._setup(roots, {s: class_folders(r, self.name) for s, r in roots.items()})

    def _setup(self, roots: dict[str, Path], files: dict[str, dict[str, list[str]]],
               classes: tuple[str, ...] | None = None) -> None:  # fmt: skip
        """Splits from ``files`` (split -> class -> files under ``roots[split]``); the classes are the
        evaluated split's folders in sorted order unless given (a fixed index such as ImageNet's)."""
        self._cache = {}
        self.roots, self.splits, self.files = roots, tuple(roots), files
        default = self.options.split or next((d for d in ("test", "val", "validation") if d in roots), None)
        if default not in roots:
            raise TaskError(f"task {self.name}: no split {default!r}; its splits are {list(roots)}")
        self.eval_split = default
        self.classes = classes or tuple(files[default])
        paths = [p for name in self.classes for p in files[default].get(name, [])]
        self._entries = {default: file_index(roots[default], paths)}
        self._refuse_unreadable(default, paths)
        readable = {p: e for p, e in self._entries[default].items() if not isinstance(e, str)}
        channels, size = infer_format(readable, self.options, self.name)
        self.input_shape = (channels, *size)
        self.description = (f"Images from {roots[default]}: {len(paths)} in the {default} split, "
                            f"{len(self.classes)} classes.")  # fmt: skip

    def _refuse_unreadable(self, split: str, paths: list[str]) -> list[str]:
        """The files of ``split`` PIL cannot read: refused, naming them, unless ``skip_unreadable``."""
        entries = self._entries[split]
        unreadable = [p for p in paths if isinstance(entries[p], str)]
        if unreadable and not self.options.skip_unreadable:
            shown = "; ".join(entries[p] for p in unreadable[:3]) + ("; ..." if len(unreadable) > 3 else "")
            raise TaskError(
                f"task {self.name}: {len(unreadable)} of {len(paths)} files in split {split} cannot be read as "
                f"images: {shown}. Remove or repair them, or pass the task option skip_unreadable=true to evaluate "
                "the others (the files left out are named in every job's spec)"
            )
        return unreadable

    def _load(self, split: str) -> Split:
        """The split as a stream of its files (decoded when read), fingerprinted from their bytes."""
        import pandas as pd
        import torch

        files = self.files[split]
        unknown = sorted(set(files) - set(self.classes))
        if unknown:
            raise TaskError(f"task {self.name}: split {split} has classes {unknown} that {self.eval_split} lacks")
        paths = [p for name in self.classes for p in files.get(name, [])]
        labels = np.asarray([k for k, name in enumerate(self.classes) for _ in files.get(name, [])], dtype=np.int64)
        if split not in self._entries:
            self._entries[split] = file_index(self.roots[split], paths)
        entries = self._entries[split]
        prefix = len(str(self.roots[split])) + 1  # the files were listed under the split's folder
        unreadable = self._refuse_unreadable(split, paths)
        if unreadable:
            keep = np.asarray([not isinstance(entries[p], str) for p in paths])
            paths, labels = [p for p, k in zip(paths, keep, strict=True) if k], labels[keep]
        names = [p[prefix:] for p in paths]
        listed = [(n, int(k), entries[p]) for n, k, p in zip(names, labels, paths, strict=True)]
        channels, size = self.input_shape[0], self.input_shape[1:]
        return Split(
            self.name,
            split,
            ImageFiles(paths, channels, size, self.options.resize, self.options.interpolation),
            torch.from_numpy(labels),
            pd.DataFrame({"index": np.arange(len(labels)), "file": names}),
            files_fingerprint(self.name, split, self.options, listed),  # type: ignore[arg-type]
            excluded={"unreadable_files": sorted(p[prefix:] for p in unreadable)} if unreadable else {},
        )
