"""``hf:<dataset>[/<config>]``: a Hugging Face ``datasets`` data set, image or text, and ``sst2``.

Loaded with ``datasets.load_dataset`` (the hub when online, its cache offline, or a local folder of
data files) or ``load_from_disk`` for a folder that ``save_to_disk`` wrote. Options map the columns:
``image_column`` or ``text_column``, ``label_column``, ``attributes`` (columns kept for fairness
slices), and ``split``. Images stream: each is decoded when read (in a DataLoader's workers, from the
data set's memory-mapped Arrow files), and the split is fingerprinted from the data set's own
fingerprint (``datasets`` derives it from the data files or keeps it with ``save_to_disk``), never from
decoded pixels. Texts are small and held in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import Field

from harness import hub
from harness.registry import tasks
from harness.tasks.base import (
    DataNotFoundError,
    Split,
    Task,
    TaskError,
    fingerprint_arrays,
    parse_options,
)
from harness.tasks.images import ImageOptions, to_array
from harness.tasks.text import encode_texts

if TYPE_CHECKING:
    import datasets
    import torch

    from harness.decoding import Decoding


class HFOptions(ImageOptions):
    image_column: str | None = None
    text_column: str | None = None
    label_column: str = "label"
    attributes: tuple[str, ...] = Field((), description="columns kept as sensitive attributes")
    revision: str | None = None


def load_split(path: str, config: str | None, split: str, revision: str | None, where: str) -> datasets.Dataset:
    """One split, from a ``save_to_disk`` folder or through ``load_dataset``; errors say what to do."""
    folder = Path(path).expanduser()
    if not folder.exists():
        hub.before_hub_access()
    import datasets

    datasets.disable_progress_bars()  # harness shows its own progress
    if (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file():
        loaded = datasets.load_from_disk(str(folder))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise TaskError(f"task {where}: no split {split!r}; its splits are {list(loaded)}")
            return loaded[split]
        return loaded
    try:
        return datasets.load_dataset(path, config, split=split, revision=revision)
    except ValueError as exc:
        if "split" in str(exc).lower():
            raise TaskError(f"task {where}: no split {split!r} ({exc})") from None
        raise TaskError(f"task {where}: {exc}") from None
    except (FileNotFoundError, ConnectionError, OSError) as exc:
        offline = "HF_DATASETS_OFFLINE" if hub.offline(datasets=True) else None
        how = (
            f"{offline}=1 is set, so only data sets already in the cache or on disk can load; "
            f"run once online, or pass a local folder (hf:<dir>)"
            if offline
            else "check the name on https://huggingface.co/datasets, or pass a local folder (hf:<dir>)"
        )
        raise DataNotFoundError(
            f"task {where}: data set {path!r} could not be loaded ({type(exc).__name__}). {how}"
        ) from None


def class_names(column: Any, values: list[Any]) -> tuple[tuple[str, ...], np.ndarray]:
    """Class names and integer labels: a ClassLabel's names, else the sorted distinct values."""
    names = getattr(column, "names", None)
    if names:
        return tuple(names), np.asarray(values, dtype=np.int64)
    distinct = sorted(set(values), key=lambda v: (str(type(v)), v))
    if all(isinstance(v, int | np.integer) for v in distinct) and distinct and min(distinct) >= 0:
        return tuple(str(k) for k in range(max(distinct) + 1)), np.asarray(values, dtype=np.int64)
    index = {v: k for k, v in enumerate(distinct)}
    return tuple(str(v) for v in distinct), np.asarray([index[v] for v in values], dtype=np.int64)


@tasks.register("hf", "hf:<dataset>[/<config>]: a Hugging Face data set (image or text), options map columns")
class HFTask(Task):
    argument: ClassVar[str] = "<dataset>[/<config>]"
    default_split: ClassVar[str] = "test"

    def __init__(self, spec: str, **options: object) -> None:
        self._cache = {}
        self.name = f"hf:{spec}"
        self.options = parse_options(HFOptions, options, self.name)
        self.path, self.config = self._path_and_config(spec)
        self.eval_split = self.options.split or self.default_split
        self.splits = (self.eval_split,)
        data = load_split(self.path, self.config, self.eval_split, self.options.revision, self.name)
        self._data = data
        columns = list(data.column_names)
        opts = self.options
        image, text = opts.image_column, opts.text_column
        if image is None and text is None:
            image = next((c for c in ("image", "img", "pixel_values") if c in columns), None)
            text = None if image else next((c for c in ("text", "sentence", "content", "review") if c in columns), None)
        wanted = {"image_column": image, "text_column": text, "label_column": opts.label_column}
        for option, column in wanted.items():
            if column is not None and column not in columns:
                raise TaskError(f"task {self.name}: {option} {column!r} is not a column; columns: {columns}")
        for column in opts.attributes:
            if column not in columns:
                raise TaskError(f"task {self.name}: attribute {column!r} is not a column; columns: {columns}")
        if image is None and text is None:
            raise TaskError(
                f"task {self.name}: no image or text column found in {columns}; name one with the task option "
                "image_column=... or text_column=..."
            )
        self.column = image or text
        self.modality = "image" if image else "text"
        self.sensitive = tuple(opts.attributes)
        self.classes, self._labels = class_names(data.features[opts.label_column], data[opts.label_column])
        if (self._labels < 0).any():
            raise TaskError(
                f"task {self.name}: split {self.eval_split!r} has unlabelled examples (label -1, as hidden test "
                "sets do); evaluate a labelled split, e.g. split=validation"
            )
        if self.modality == "image":
            first = data[0][image]
            channels = opts.channels or (1 if first.mode in ("1", "L") else 3)
            size = opts.size or (first.height, first.width)
            self.input_shape = (channels, *size)
            self.bounds = (0.0, 1.0)
        else:
            self.input_shape = (max(len(str(t).encode()) for t in data[text]),)
        self.description = f"{spec} ({self.eval_split} split, {len(data)} examples, {len(self.classes)} classes)"

    @staticmethod
    def _path_and_config(spec: str) -> tuple[str, str | None]:
        """``glue/sst2`` -> ("glue", "sst2"); ``user/name`` and folders stay whole."""
        if Path(spec).expanduser().exists():
            return spec, None
        parts = spec.split("/")
        return ("/".join(parts[:2]), "/".join(parts[2:]) or None) if len(parts) > 2 else (spec, None)

    def _load(self, split: str) -> Split:
        import pandas as pd
        import torch

        data, opts = self._data, self.options
        extra = {c: [str(v) for v in data[c]] for c in opts.attributes}
        attributes = pd.DataFrame({"index": np.arange(len(data)), **extra})
        labels = torch.from_numpy(self._labels)
        if self.modality == "image":
            channels, size = self.input_shape[0], tuple(self.input_shape[1:])
            images = DatasetImages(data, self.column, channels, size, opts.resize, opts.interpolation, self.name)
            identity = f"{self.name}/{split}/{opts.model_dump_json()}/{data._fingerprint}/{attributes.to_csv()}"
            return Split(self.name, split, images, labels, attributes, fingerprint_arrays(self._labels, extra=identity))
        texts = [str(t) for t in data[self.column]]
        inputs = encode_texts(texts, self.input_shape[0])
        return Split(
            self.name, split, inputs, labels, attributes,
            fingerprint_arrays(inputs.numpy(), self._labels, extra=f"{self.name}/{split}/{attributes.to_csv()}"),
        )  # fmt: skip


class DatasetImages:
    """The images of a ``datasets`` column, decoded when read: uint8 [C, H, W] of the task's size."""

    def __init__(self, data: datasets.Dataset, column: str, channels: int, size: tuple[int, int],
                 resize: int | None, interpolation: str, where: str) -> None:  # fmt: skip
        self.data = data.select_columns([column])
        self.column, self.channels, self.size, self.resize = column, channels, tuple(size), resize
        self.interpolation, self.where = interpolation, where

    def __len__(self) -> int:
        return len(self.data)

    def redecoded(self, decoding: Decoding) -> DatasetImages:
        return DatasetImages(self.data, self.column, self.channels, decoding.size, decoding.resize,
                             decoding.interpolation, self.where)  # fmt: skip

    def __getitem__(self, i: int) -> torch.Tensor:
        import torch

        array = to_array(self.data[int(i)][self.column], self.channels, self.size, self.resize, self.interpolation)
        if array.shape[1:] != self.size:
            raise TaskError(
                f"task {self.where}: image {i} is {array.shape[2]}x{array.shape[1]}, the first was "
                f"{self.size[1]}x{self.size[0]}; declare the size with the task option size=H or size=[H, W]"
            )
        return torch.from_numpy(np.ascontiguousarray(array))


@tasks.register("sst2", "SST-2 validation split (872 movie-review sentences, positive/negative) via datasets")
class SST2(HFTask):
    """GLUE's Stanford Sentiment Treebank, binary; the validation split (the test labels are hidden)."""

    argument: ClassVar[str | None] = None  # type: ignore[assignment]
    default_split = "validation"
    license = "unknown (research use; see the dataset card of stanfordnlp/sst2)"
    citation = "Socher et al. Recursive Deep Models for Semantic Compositionality Over a Sentiment Treebank. 2013."

    def __init__(self, **options: object) -> None:
        try:
            super().__init__("stanfordnlp/sst2", **{"text_column": "sentence", **options})
        except DataNotFoundError as exc:
            raise DataNotFoundError(
                f"{exc}\nsst2 loads stanfordnlp/sst2 from the Hugging Face hub: run once online (it is cached "
                "under ~/.cache/huggingface), or save it with datasets' save_to_disk and use hf:<that folder>."
            ) from None
        self.name = "sst2"
