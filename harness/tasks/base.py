"""The ``Task``: a labelled data set with declared input shape, bounds, classes and sensitive attributes."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Split:
    """One split in memory: ``inputs`` in the task's raw space, integer ``labels``, and ``attributes``
    (one row per example: its ``index`` in the split, sensitive features, any metadata a slice may
    use). A subset keeps the original ``index`` so that per-example outputs stay comparable."""

    task: str
    name: str
    inputs: torch.Tensor
    labels: torch.Tensor
    attributes: pd.DataFrame
    fingerprint: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: np.ndarray) -> Split:
        import torch

        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return Split(
            self.task,
            self.name,
            self.inputs[idx],
            self.labels[idx],
            self.attributes.iloc[np.asarray(indices)].reset_index(drop=True),
            fingerprint_arrays(np.asarray(indices, dtype=np.int64), extra=self.fingerprint),
        )

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, pd.DataFrame]]:
        for start in range(0, len(self), batch_size):
            stop = start + batch_size
            yield self.inputs[start:stop], self.labels[start:stop], self.attributes.iloc[start:stop]


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

    @cached_property
    def fingerprint(self) -> str:
        """Hash of the evaluation split's data (inputs, labels, attributes)."""
        return self.load().fingerprint

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
