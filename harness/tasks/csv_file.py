"""``csv:<file>``: a table from a CSV file, its columns described by options or a YAML file.

Options: ``label`` (required), ``features`` (default: every other column), ``categorical`` (default:
the features that are not numbers), ``sensitive`` (columns kept as attributes for fairness slices;
they stay features unless ``features`` leaves them out), ``classes`` (label values in class order;
default sorted), ``train`` (a CSV of training rows, for the metrics that need training statistics)
or ``test_fraction`` (a seeded split of this one file), ``config`` (a YAML file holding any of these).

Bad data is refused with what is wrong and where, never silently mended: rows without a label (unless
``drop_missing_labels``, which leaves them out and records how many in the split's fingerprint and
every job's spec), text in a column of numbers (unless it is declared ``categorical``), and a table
over ``MAX_COLUMNS`` columns or ``max_cells`` cells (checked before it is parsed).
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


MAX_COLUMNS = 10_000  # a classifier's table; a wider file is most likely not one (a wrong separator, a matrix)
MAX_CELLS = 200_000_000  # rows x columns a task reads by default (about 1.6 GB as numbers)


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
    drop_missing_labels: bool = False
    max_cells: int = Field(MAX_CELLS, gt=0)

    @model_validator(mode="after")
    def _one_train_source(self) -> CSVOptions:
        if self.train and self.test_fraction:
            raise ValueError("give train (a file) or test_fraction (a split of this file), not both")
        return self


def read_table(path: Path, separator: str, where: str, max_cells: int = MAX_CELLS) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        raise TaskError(f"task {where}: {path} does not exist (expected a CSV file with a header row)")
    check_size(path, separator, where, max_cells)
    try:
        frame = pd.read_csv(path, sep=separator, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise TaskError(f"task {where}: {path} is not a readable CSV table ({exc})") from None
    if frame.empty:
        raise TaskError(f"task {where}: {path} has no rows")
    return frame


def check_size(path: Path, separator: str, where: str, max_cells: int) -> None:
    """Refuse a table too wide or too large before parsing it: its header's columns and its lines counted."""
    with path.open("rb") as f:
        header = f.readline()
        lines = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 22), b""))
    columns = header.count(separator.encode()) + 1
    if columns > MAX_COLUMNS:
        raise TaskError(
            f"task {where}: {path} has {columns:,} columns in its header, over the {MAX_COLUMNS:,} a table of "
            f"features may have; is the separator {separator!r} right (task option separator)?"
        )
    if columns * lines > max_cells:
        raise TaskError(
            f"task {where}: {path} has about {lines:,} rows of {columns:,} columns ({columns * lines:,} cells), over "
            f"the {max_cells:,} the task reads by default; evaluate a sample of it, or raise the task option max_cells"
        )


def rows_named(positions: list[int], limit: int = 5) -> str:
    """Data rows by their line in the file (the header is line 1): ``lines 3, 8, 15, ...``."""
    shown = ", ".join(str(p + 2) for p in positions[:limit])
    return f"line{'s' * (len(positions) > 1)} {shown}{', ...' if len(positions) > limit else ''}"


def text_in_numbers(frame: pd.DataFrame, columns: list[str]) -> tuple[str, list[Any], list[int]] | None:
    """The first column that holds mostly numbers and some text (``n/a``, ``?``, ``12,5``): its name,
    examples of the text and where; None where every column is numbers or text throughout."""
    import pandas as pd

    for column in columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values):
            continue
        present = values.dropna()
        numbers = pd.to_numeric(present, errors="coerce")
        if len(present) and numbers.notna().sum() >= len(present) / 2:
            bad = present[numbers.isna()]
            return column, list(dict.fromkeys(bad.astype(str)))[:5], [int(i) for i in bad.index]
    return None


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
        frame = read_table(self.path, opts.separator, self.name, opts.max_cells)
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
        declared = set(opts.categorical or ())
        mixed = text_in_numbers(frame, [c for c in self.features if c not in declared])
        if mixed is not None:
            column, texts, where = mixed
            raise TaskError(
                f"task {self.name}: column {column!r} of {self.path} holds numbers and {len(where)} values that are "
                f"not: {', '.join(map(repr, texts))} ({rows_named(where)}). Leave a missing number empty, or list "
                f"the column under the task option categorical to treat every value as a category"
            )
        missing = frame.index[frame[opts.label].isna()].tolist()
        if missing and not opts.drop_missing_labels:
            raise TaskError(
                f"task {self.name}: {len(missing)} of {len(frame)} rows of {self.path} have no label in column "
                f"{opts.label!r} ({rows_named(missing)}); fill them in, or pass the task option "
                f"drop_missing_labels=true to evaluate the other {len(frame) - len(missing)} (the count is "
                "recorded in every figure's spec)"
            )
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
            train = read_table(Path(opts.train).expanduser(), opts.separator, self.name, opts.max_cells)
            return {"train": train, "test": frame}
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
        unlabelled = int(frame[self.options.label].isna().sum())
        if unlabelled and not self.options.drop_missing_labels:
            raise TaskError(
                f"task {self.name}: {unlabelled} of the {split} rows have no label in column "
                f"{self.options.label!r}; fill them in, or pass the task option drop_missing_labels=true"
            )
        frame = frame.dropna(subset=[self.options.label])
        labels = frame[self.options.label].astype(str).map({c: k for k, c in enumerate(self.classes)})
        if labels.isna().any():
            unknown = sorted(set(frame[self.options.label].astype(str)) - set(self.classes))
            raise TaskError(f"task {self.name}: {split} label values {unknown} are not among {list(self.classes)}")
        attributes = frame[list(self.sensitive)].astype(str).reset_index(drop=True)
        excluded = {"missing_labels": unlabelled} if unlabelled else None
        return self.split_from_frame(split, frame, labels.to_numpy().astype(np.int64), attributes, excluded)
