"""UCI Adult: predict whether income exceeds $50K from census features (Becker and Kohavi, 1996)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from harness.registry import tasks
from harness.tasks.base import Split, shipped
from harness.tasks.tabular import TabularSchema, TabularTask, age_group, hold_out, vocabulary

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = (
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
    "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country",
    "income",
)  # fmt: skip
NUMERIC = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")
CATEGORICAL = (
    "workclass", "education", "marital-status", "occupation", "relationship", "race", "sex", "native-country",
)  # fmt: skip
FILES = {"train": "adult.data.gz", "validation": "adult.data.gz", "test": "adult.test.gz"}


def read_adult(split: str) -> pd.DataFrame:
    """The rows of ``split``: the test file, or the training file's share (``tabular.hold_out``)."""
    frame = read_file(FILES[split])
    if split == "test":
        return frame
    return frame.iloc[hold_out(frame.index.to_numpy())[split]].reset_index(drop=True)


def read_file(name: str) -> pd.DataFrame:
    import pandas as pd

    path = shipped("adult", name)
    frame = pd.read_csv(
        path,
        header=None,
        names=list(COLUMNS),
        skipinitialspace=True,
        na_values=["?"],
        comment="|",  # adult.test opens with "|1x3 Cross validator"
    )
    frame = frame.dropna(subset=["income"])
    frame["income"] = frame["income"].str.rstrip(".")  # test labels end with a full stop
    return frame.reset_index(drop=True)


@tasks.register("adult", "UCI Adult census income >50K: 16,281 test rows; sensitive sex, race, age group")
class Adult(TabularTask):
    name = "adult"
    classes = ("<=50K", ">50K")
    splits = ("train", "validation", "test")
    sensitive = ("sex", "race", "age_group")
    description = "UCI Adult: does a person earn more than $50K a year, from 14 census features."
    license = "CC BY 4.0"
    citation = "Becker, Kohavi. Adult. UCI Machine Learning Repository, 1996. doi:10.24432/C5XW20"

    @cached_property
    def schema(self) -> TabularSchema:  # type: ignore[override]
        return TabularSchema(
            NUMERIC, vocabulary(read_file(FILES["train"]), CATEGORICAL), log_scaled=("capital-gain", "capital-loss")
        )

    def _load(self, split: str) -> Split:
        import pandas as pd

        frame = read_adult(split)
        labels = (frame["income"] == ">50K").to_numpy()
        unknown = set(frame["income"].unique()) - set(self.classes)
        if unknown:
            raise ValueError(f"adult {split}: unexpected income labels {sorted(unknown)}")
        attributes = pd.DataFrame(
            {"sex": frame["sex"], "race": frame["race"], "age_group": age_group(frame["age"]), "age": frame["age"],
             "native_country": frame["native-country"]}
        )  # fmt: skip
        return self.split_from_frame(split, frame, labels.astype(np.int64), attributes)
