"""Statlog German Credit: good or bad credit risk from 20 attributes (Hofmann, 1994)."""

from __future__ import annotations

import json
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from harness.registry import tasks
from harness.tasks.base import Split, shipped
from harness.tasks.tabular import TabularSchema, TabularTask, age_group, hold_out

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = (
    "status", "duration", "credit_history", "purpose", "credit_amount", "savings", "present_employment",
    "installment_rate", "status_sex", "other_debtors", "residence_since", "property", "age",
    "installment_plans", "housing", "existing_credits", "job", "people_liable", "telephone",
    "foreign_worker", "credit",
)  # fmt: skip
NUMERIC = (
    "duration", "credit_amount", "installment_rate", "residence_since", "age", "existing_credits",
    "people_liable",
)  # fmt: skip
CATEGORICAL = tuple(c for c in COLUMNS[:-1] if c not in NUMERIC)
TEST_FRACTION = 0.3
SPLIT_SEED = 0


def read_german() -> pd.DataFrame:
    import pandas as pd

    return pd.read_csv(shipped("german-credit", "german.data.gz"), sep=" ", header=None, names=list(COLUMNS))


def split_indices(n: int) -> dict[str, np.ndarray]:
    """The fixed, seeded 70/30 split into training and test rows (the data set ships as one table);
    a tenth of the training rows is held out as ``validation`` (``tabular.hold_out``)."""
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    cut = round(n * (1 - TEST_FRACTION))
    return {**hold_out(np.sort(order[:cut])), "test": np.sort(order[cut:])}


@tasks.register("german-credit", "Statlog German Credit good/bad risk: 300 test rows; sensitive sex, age group")
class GermanCredit(TabularTask):
    name = "german-credit"
    classes = ("bad", "good")
    splits = ("train", "validation", "test")
    sensitive = ("sex", "age_group")
    description = (
        "Statlog German Credit: is an applicant a good credit risk. Sex comes from the personal-status code "
        "(A91-A95); the 1,000 rows are split 70/30 with a fixed seed, and a tenth of the 700 held out as validation."
    )
    license = "CC BY 4.0"
    citation = "Hofmann. Statlog (German Credit Data). UCI Machine Learning Repository, 1994. doi:10.24432/C5NC77"

    @cached_property
    def codes(self) -> dict[str, dict[str, object]]:
        return json.loads(shipped("german-credit", "values_maps.json").read_text())

    @cached_property
    def schema(self) -> TabularSchema:  # type: ignore[override]
        return TabularSchema(NUMERIC, {c: tuple(sorted(self.codes[c])) for c in CATEGORICAL})

    def _load(self, split: str) -> Split:
        import pandas as pd

        frame = read_german()
        frame = frame.iloc[split_indices(len(frame))[split]].reset_index(drop=True)
        sex = frame["status_sex"].map(lambda code: str(self.codes["status_sex"][code]).split(":")[0].strip())
        attributes = pd.DataFrame({"sex": sex, "age_group": age_group(frame["age"]), "age": frame["age"]})
        labels = (frame["credit"] == 1).to_numpy()  # 1 = good, 2 = bad
        return self.split_from_frame(split, frame, labels.astype(np.int64), attributes)
