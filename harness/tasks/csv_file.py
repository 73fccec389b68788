"""``csv:<file>``: a table from a CSV file, its columns described by options or a YAML file.

Options: ``label`` (required), ``features`` (default: every other column), ``categorical`` (default:
the features that are not numbers), ``sensitive`` (columns kept as attributes for fairness slices;
they stay features unless ``features`` leaves them out), ``classes`` (label values in class order;
default sorted), ``train`` (a CSV of training rows, for the metrics that need training statistics)
or ``test_fraction`` (a seeded split of this one file), ``config`` (a YAML file holding any of these).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.registry import tasks
from harness.tasks.base import Split, TaskError, parse_options
from harness.tasks.tabular import TabularSchema, TabularTask, vocabulary

if TYPE_CHECKING:
    import pandas as pd


class CSVOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    label: str
    features: tuple[str, ...] | None = None
    categorical: tuple[str, ...] | None = None
    sensitive: tuple[str, ...] = ()
    classes: tuple[str, ...] | None = None
    train: str | None = None
    test_fraction: float | None = Field(None, gt=0, lt=1)
    seed: int = 0
    separator: str = ","

    @model_validator(mode="after")
    def _one_train_source(self) -> CSVOptions:
        if self.train and self.test_fraction:
            raise ValueError("give train (a file) or test_fraction (a split of this file), not both")
        return self


def read_table(path: Path, separator: str, where: str) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        raise TaskError(f"task {where}: {path} does not exist (expected a CSV file with a header row)")
    try:
        frame = pd.read_csv(path, sep=separator, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise TaskError(f"task {where}: {path} is not a readable CSV table ({exc})") from None
    if frame.empty:
        raise TaskError(f"task {where}: {path} has no rows")
    return frame


@tasks.register("csv", "csv:<file>: a table; options label, features, categorical, sensitive, train (or a YAML)")
class CSVTask(TabularTask):
    argument: ClassVar[str] = "<file>"

    def __init__(self, file: str, config: str | None = None, **options: Any) -> None:
        import pandas as pd

        self._cache = {}
        self.name = f"csv:{file}"
        if config:
            try:
                loaded = yaml.safe_load(Path(config).expanduser().read_text()) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise TaskError(f"task {self.name}: cannot read the options file {config} ({exc})") from None
            if not isinstance(loaded, dict):
                raise TaskError(f"task {self.name}: {config} should map option names to values")
            options = {**loaded, **options}
        self.options = opts = parse_options(CSVOptions, options, self.name)
        self.path = Path(file).expanduser()
        frame = read_table(self.path, opts.separator, self.name)
        columns = list(frame.columns)
        named = {"label": [opts.label], "features": list(opts.features or ()), "sensitive": list(opts.sensitive),
                 "categorical": list(opts.categorical or ())}  # fmt: skip
        for option, values in named.items():
            missing = [c for c in values if c not in columns]
            if missing:
                raise TaskError(f"task {self.name}: {option} column {missing} not in {self.path}; columns: {columns}")
        self.features = tuple(opts.features or [c for c in columns if c != opts.label])
        if opts.label in self.features:
            raise TaskError(f"task {self.name}: the label column {opts.label!r} cannot also be a feature")
        numeric = [c for c in self.features if pd.api.types.is_numeric_dtype(frame[c])]
        self.categorical_columns = tuple(opts.categorical if opts.categorical is not None else
                                         [c for c in self.features if c not in numeric])  # fmt: skip
        self.numeric_columns = tuple(c for c in self.features if c not in self.categorical_columns)
        for column in self.numeric_columns:
            if not pd.api.types.is_numeric_dtype(frame[column]):
                raise TaskError(f"task {self.name}: column {column!r} holds text; list it under categorical")
        labels = frame[opts.label].dropna().astype(str)
        self.classes = tuple(opts.classes or sorted(labels.unique()))
        extra = sorted(set(labels) - set(self.classes))
        if extra:
            raise TaskError(f"task {self.name}: label values {extra} are not among classes {list(self.classes)}")
        if len(self.classes) < 2:
            raise TaskError(f"task {self.name}: the label column {opts.label!r} has fewer than 2 classes")
        self.sensitive = tuple(opts.sensitive)
        self.frames = self._splits(frame)
        self.splits = tuple(self.frames)
        self.description = f"{self.path.name}: {len(self.frames['test'])} test rows, label {opts.label!r}."

    def _splits(self, frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
        opts = self.options
        if opts.train:
            return {"train": read_table(Path(opts.train).expanduser(), opts.separator, self.name), "test": frame}
        if opts.test_fraction:
            order = np.random.default_rng(opts.seed).permutation(len(frame))
            cut = round(len(frame) * (1 - opts.test_fraction))
            return {"train": frame.iloc[np.sort(order[:cut])], "test": frame.iloc[np.sort(order[cut:])]}
        return {"test": frame}

    @cached_property
    def schema(self) -> TabularSchema:  # type: ignore[override]
        reference = self.frames.get("train", self.frames["test"])
        return TabularSchema(self.numeric_columns, vocabulary(reference, self.categorical_columns))

    def load(self, split: str | None = None) -> Split:
        if split == "train" and "train" not in self.frames:
            raise TaskError(
                f"task {self.name}: this metric needs training rows; give the task option train=FILE "
                "(a CSV of training rows) or test_fraction=0.3 (a seeded split of this file)"
            )
        return super().load(split)

    def _load(self, split: str) -> Split:
        frame = self.frames[split].reset_index(drop=True)
        missing = [c for c in (*self.features, self.options.label, *self.sensitive) if c not in frame.columns]
        if missing:
            raise TaskError(f"task {self.name}: the {split} rows lack columns {missing}")
        frame = frame.dropna(subset=[self.options.label])
        labels = frame[self.options.label].astype(str).map({c: k for k, c in enumerate(self.classes)})
        if labels.isna().any():
            unknown = sorted(set(frame[self.options.label].astype(str)) - set(self.classes))
            raise TaskError(f"task {self.name}: {split} label values {unknown} are not among {list(self.classes)}")
        attributes = frame[list(self.sensitive)].astype(str).reset_index(drop=True)
        return self.split_from_frame(split, frame, labels.to_numpy().astype(np.int64), attributes)
