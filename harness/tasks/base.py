"""The ``Task``: a labelled data set with declared input shape, bounds, classes and sensitive attributes."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from harness.errors import HarnessError

if TYPE_CHECKING:
    import pandas as pd
    import torch
    from pydantic import BaseModel
    from torch.utils.data import Dataset

    from harness.decoding import Decoding

Modality = Literal["image", "tabular", "text"]


class DataNotFoundError(HarnessError, FileNotFoundError):
    """A data source is missing; the message says where it was looked for and how to get it."""


class TaskError(HarnessError, ValueError):
    """Data or task options that cannot make a task; the message names the input and what was expected."""


def shipped(*parts: str) -> Path:
    """Path of a file in the package's shipped data."""
    return Path(str(resources.files("harness") / "data" / Path(*parts)))


def fingerprint_arrays(*arrays: np.ndarray, extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


class StreamedSplitError(HarnessError, TypeError):
    """Code asked a streamed split for all its inputs at once; it reads them with ``batches`` or ``take``."""


@dataclass(frozen=True)
class Split:
    """One split: ``data`` holds the inputs in the task's raw space, either in memory (a tensor: the
    shipped tasks, tables, texts) or as a dataset of examples decoded when read (uint8 images that
    become float in [0, 1] on the device); integer ``labels`` and ``attributes`` (one row per example:
    its ``index`` in the split, sensitive features, any metadata a slice may use) are in memory. A
    subset keeps the original ``index`` so that per-example outputs stay comparable.

    Metrics read inputs with ``batches`` (every example, or some, in order) or ``take`` (a bounded
    subset as one tensor), never the whole split at once, so that the host's memory does not grow with
    the data."""

    task: str
    name: str
    data: torch.Tensor | Dataset
    labels: torch.Tensor
    attributes: pd.DataFrame
    fingerprint: str
    decoding: str = ""  # a model's own decoding of the files (``redecoded``), "" for the task's
    # what the task left out on request (``skip_unreadable``, ``drop_missing_labels``): it enters job specs
    excluded: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def redecoded(self, decoding: Decoding) -> Split | None:
        """The same examples decoded from their files as ``decoding`` says (a model's data config:
        resize, crop, interpolation), or None where the split is not read from files."""
        from torch.utils.data import Subset

        data = self.data.dataset if isinstance(self.data, Subset) else self.data
        if not self.streamed or not hasattr(data, "redecoded"):
            return None
        again = data.redecoded(decoding)
        described = decoding.model_dump_json()
        return Split(
            self.task, self.name, Subset(again, self.data.indices) if isinstance(self.data, Subset) else again,
            self.labels, self.attributes, fingerprint_arrays(extra=f"{self.fingerprint}/{described}"), described,
            self.excluded,
        )  # fmt: skip

    @property
    def streamed(self) -> bool:
        import torch

        return not isinstance(self.data, torch.Tensor)

    @property
    def inputs(self) -> torch.Tensor:
        """Every input as one tensor: only for a split held in memory (training the zoo, tables)."""
        if self.streamed:
            raise StreamedSplitError(
                f"{self.task} ({self.name}) is read from its files in batches; use Split.batches or Split.take"
            )
        return self.data  # type: ignore[return-value]

    def subset(self, indices: np.ndarray) -> Split:
        import torch
        from torch.utils.data import Subset

        positions = np.asarray(indices, dtype=np.int64)
        data = Subset(self.data, positions.tolist()) if self.streamed else self.data[torch.as_tensor(positions)]
        return Split(
            self.task,
            self.name,
            data,
            self.labels[torch.as_tensor(positions)],
            self.attributes.iloc[positions].reset_index(drop=True),
            fingerprint_arrays(positions, extra=self.fingerprint),
            self.decoding,
            self.excluded,
        )

    def batches(
        self,
        batch_size: int,
        *,
        positions: np.ndarray | None = None,
        workers: int = 0,
        device: torch.device | None = None,
    ) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
        """(inputs on ``device``, their positions in the split) in order, ``batch_size`` at a time; a
        streamed split is decoded by ``workers`` processes (its uint8 pixels become float in [0, 1] on
        the device), a split in memory is sliced as it is held."""
        from harness.tasks.stream import stream

        if self.streamed:
            yield from stream(self.data, batch_size, positions=positions, workers=workers, device=device)
            return
        rows = np.arange(len(self)) if positions is None else np.asarray(positions, dtype=np.int64)
        contiguous = positions is None
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            batch = self.data[start : start + len(chunk)] if contiguous else self.data[chunk]
            yield (batch if device is None else batch.to(device)), chunk

    def take(self, positions: np.ndarray, *, workers: int = 0, device: torch.device | None = None) -> torch.Tensor:
        """The inputs at ``positions`` as one tensor on ``device``: for metrics that work on a bounded
        subset (attacks, attributions, timing)."""
        import torch

        positions = np.asarray(positions, dtype=np.int64)
        if not self.streamed:
            rows = self.data[torch.as_tensor(positions)]
            return rows if device is None else rows.to(device)
        parts = [batch for batch, _ in self.batches(256, positions=positions, workers=workers, device=device)]
        return torch.cat(parts) if parts else torch.empty(0)


class Task(ABC):
    """A classification task. Subclasses declare their metadata and load their splits."""

    name: ClassVar[str]
    modality: ClassVar[Modality]
    classes: ClassVar[tuple[str, ...]]
    splits: ClassVar[tuple[str, ...]]
    eval_split: ClassVar[str] = "test"
    input_shape: ClassVar[tuple[int, ...]]  # one example, e.g. (1, 28, 28) or (14,)
    bounds: ClassVar[tuple[float, float] | None] = None  # valid input range (images), None for tables
    sensitive: ClassVar[tuple[str, ...]] = ()  # columns of ``attributes`` that fairness slices use
    shipped_train: ClassVar[str | None] = None  # a split holding a sample of the training split, shipped
    description: ClassVar[str] = ""
    license: ClassVar[str] = ""
    citation: ClassVar[str] = ""

    def __init__(self, **options: object) -> None:
        if options:
            raise TaskError(f"task {self.name!r} takes no options; got {', '.join(sorted(options))}")
        self._cache: dict[str, Split] = {}

    @abstractmethod
    def _load(self, split: str) -> Split: ...

    def load(self, split: str | None = None) -> Split:
        split = split or self.eval_split
        if split not in self.splits:
            raise TaskError(f"task {self.name!r} has no split {split!r}; its splits are {list(self.splits)}")
        if split not in self._cache:
            self._cache[split] = self._load(split)
        return self._cache[split]

    @property
    def training_split(self) -> str | None:
        """Where what is fitted on training data (variants, OOD detectors, membership's members) comes
        from: the shipped sample of the training split where the task has one (the same data on every
        machine), else the first split besides the evaluated one; None where there is none."""
        return self.shipped_train or next((s for s in self.splits if s != self.eval_split), None)

    @property
    def validation_split(self) -> str | None:
        """Where what is fitted after training (temperature scaling) comes from: held-out data, the
        task's ``validation`` (or ``val``) split where it has one besides the evaluated one, else the
        training split (the variant's lineage names the split it was fitted on)."""
        held_out = (s for s in ("validation", "val") if s in self.splits and s != self.eval_split)
        return next(held_out, None) or self.training_split

    @cached_property
    def fingerprint(self) -> str:
        """Hash of the evaluation split's data (inputs, labels, attributes)."""
        return self.load().fingerprint

    def pregenerated(self, corruption: str, severity: int) -> Split | None:
        """The evaluated split under ``corruption`` at ``severity`` where the task holds it on disk
        (ImageNet-C's folders), else None: the corruption metric generates it."""
        return None

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def parse_options(model: type[BaseModel], options: dict[str, Any], task: str) -> Any:
    """Validate a task source's options, naming the task, the option and what is allowed."""
    from pydantic import ValidationError

    unknown = sorted(set(options) - set(model.model_fields))
    if unknown:
        raise TaskError(
            f"task {task}: unknown option {', '.join(map(repr, unknown))}; allowed: {', '.join(model.model_fields)}"
        )
    try:
        return model(**options)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise TaskError(f"task {task}: {problems}") from None
