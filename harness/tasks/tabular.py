"""Tabular tasks: a declared schema and the raw input space models see.

A table reaches a model as one float row per example: the numeric features in their own units, then
each categorical feature as the index of its value in the schema's vocabulary; a missing value is NaN
in either. Scaling, one-hot encoding and filling missing values belong to the model (its fitted
preprocessing, ``harness.models.tabular``), so shifts and attacks act on the features a person reads.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.tasks.base import Split, Task, fingerprint_arrays

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class TabularSchema:
    numeric: tuple[str, ...]
    categorical: dict[str, tuple[str, ...]]  # feature -> vocabulary, in code order
    log_scaled: tuple[str, ...] = field(default=())  # heavy-tailed numerics a model should log1p

    @property
    def columns(self) -> tuple[str, ...]:
        return self.numeric + tuple(self.categorical)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw feature matrix (float32, NaN for missing or unknown values) in schema column order."""
        import pandas as pd

        out = np.empty((len(frame), len(self.columns)), dtype=np.float32)
        for j, column in enumerate(self.numeric):
            out[:, j] = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float32)
        for j, (column, vocab) in enumerate(self.categorical.items(), start=len(self.numeric)):
            values = frame[column]  # compared as text, as the vocabulary was built; unknown values are missing
            values = values.where(values.isna(), values.astype(str))
            values = values.where(values.isin(vocab))
            codes = pd.Categorical(values, categories=list(vocab)).codes.astype(np.float32)
            codes[codes < 0] = np.nan
            out[:, j] = codes
        return out


def vocabulary(frame: pd.DataFrame, columns: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    return {c: tuple(sorted(frame[c].dropna().astype(str).unique())) for c in columns}


def bucket_names(edges: tuple[float, ...], whole: bool) -> list[str]:
    """Names of the buckets (-inf, e0), [e0, e1), ..., [ek, inf). Of whole numbers (ages) by their closed
    bounds, as the data's own groups are written: ``<25``, ``25-44``, ``65+``; of other values by their
    half-open interval: ``<0.5``, ``[0.5, 2)``, ``>=2``."""
    if whole:
        inner = [f"{a:g}-{b - 1:g}" if b - 1 > a else f"{a:g}" for a, b in itertools.pairwise(edges)]
        return [f"<{edges[0]:g}", *inner, f"{edges[-1]:g}+"]
    return [f"<{edges[0]:g}", *(f"[{a:g}, {b:g})" for a, b in itertools.pairwise(edges)), f">={edges[-1]:g}"]


def bucketed(values: pd.Series, edges: tuple[float, ...], missing: str = "missing") -> pd.Series:
    """Each value's bucket name (``bucket_names``); a missing value is the group ``missing``."""
    import pandas as pd

    numbers = values.astype(float).to_numpy()
    known = numbers[~np.isnan(numbers)]
    whole = all(float(e).is_integer() for e in edges) and bool(np.all(known == np.round(known)))
    names = np.asarray(bucket_names(tuple(edges), whole), dtype=object)
    codes = np.searchsorted(np.asarray(edges, dtype=float), numbers, side="right")
    return pd.Series(names[codes], index=values.index).where(values.notna(), missing)


AGE_EDGES = (25, 45, 65)
VALIDATION_FRACTION = 0.1
VALIDATION_SEED = 0


def hold_out(rows: np.ndarray) -> dict[str, np.ndarray]:
    """``rows`` (a training file's) split into ``train`` and a seeded tenth held out as ``validation``,
    each in file order: the zoo trains on ``train``, and what is fitted after training (temperature
    scaling) fits on rows no zoo model has seen."""
    order = np.random.default_rng(VALIDATION_SEED).permutation(len(rows))
    cut = round(len(rows) * VALIDATION_FRACTION)
    return {"validation": np.sort(rows[order[:cut]]), "train": np.sort(rows[order[cut:]])}


def age_group(age: pd.Series) -> pd.Series:
    return bucketed(age, AGE_EDGES)


class TabularTask(Task):
    """A task whose raw inputs are rows encoded by ``schema``."""

    modality = "tabular"

    @property
    def schema(self) -> TabularSchema:
        raise NotImplementedError

    def split_from_frame(self, split: str, frame: pd.DataFrame, labels: np.ndarray, attributes: pd.DataFrame,
                         excluded: dict[str, Any] | None = None):  # fmt: skip
        """A split of encoded rows; ``excluded`` names what the task left out on request (it enters the
        split's fingerprint and every job's spec)."""
        import json

        import torch

        features = self.schema.encode(frame)
        labels = labels.astype(np.int64)
        attributes = attributes.reset_index(drop=True)
        attributes.insert(0, "index", np.arange(len(attributes)))
        return Split(
            self.name,
            split,
            torch.from_numpy(features),
            torch.from_numpy(labels),
            attributes,
            fingerprint_arrays(
                features,
                labels,
                extra=f"{self.name}/{split}/{attributes.to_csv(index=False)}"
                + (json.dumps(excluded, sort_keys=True) if excluded else ""),
            ),
            excluded=dict(excluded or {}),
        )

    @property
    def input_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        return (len(self.schema.columns),)
