"""Compression-identified exemplars (Hooker et al., "What do compressed deep neural networks forget?",
2019): the examples one model classifies correctly and the other does not, from the two models' clean
passes paired on the same examples, and which classes and groups are over-represented among them.

A group is over-represented among one direction's exemplars when its share of them exceeds its share
of the paired examples; the test is Fisher's exact test, one-sided (the hypergeometric probability of
at least that many of the group among that many exemplars drawn from these examples), its p-values
adjusted by Holm over every (direction, feature, group) tested. Features are the class and each
stored attribute with at most ``MAX_GROUPS`` values (sex, race; not a continuous age).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.leaderboard.compare import CompareError, holm, pairings
from harness.selection import Choice

MAX_GROUPS = 20
DIRECTIONS = ("A right, B wrong", "B right, A wrong")


@dataclass(frozen=True)
class Group:
    direction: str  # one of DIRECTIONS
    feature: str  # "class" or an attribute
    group: str
    count: int  # of the direction's exemplars, in the group
    exemplars: int  # the direction's exemplars
    size: int  # the group's paired examples
    examples: int  # every paired example
    p: float
    p_holm: float = float("nan")

    @property
    def share(self) -> float:
        return self.count / self.exemplars if self.exemplars else float("nan")

    @property
    def base_share(self) -> float:
        return self.size / self.examples

    @property
    def ratio(self) -> float:
        """How many times its share of the data the group's share of the exemplars is."""
        return self.share / self.base_share


@dataclass(frozen=True)
class Exemplars:
    task: str
    frame: pd.DataFrame  # one row per exemplar: example, label, prediction_a, prediction_b, direction, attr_*
    examples: int  # paired examples
    groups: list[Group]

    def counts(self) -> dict[str, int]:
        return {d: int((self.frame["direction"] == d).sum()) for d in DIRECTIONS}

    def over_represented(self, alpha: float = 0.05) -> list[Group]:
        """Groups over-represented at ``alpha`` after Holm, the largest ratio first."""
        return sorted((g for g in self.groups if g.p_holm < alpha), key=lambda g: -g.ratio)


def fisher_greater(count: int, exemplars: int, size: int, examples: int) -> float:
    """One-sided Fisher exact p-value: at least ``count`` of a group of ``size`` among ``exemplars``
    drawn from ``examples``."""
    from scipy.stats import fisher_exact

    table = [[count, exemplars - count], [size - count, examples - size - (exemplars - count)]]
    return float(fisher_exact(table, alternative="greater").pvalue)


def groups_of(joined: pd.DataFrame, classes: tuple[str, ...] | None) -> dict[str, pd.Series]:
    """The features to test: the class, and each attribute with few enough values."""
    label = joined["label"].astype(int)
    out = {"class": label.map(lambda k: classes[k] if classes and k < len(classes) else str(k))}
    for column in joined.columns:
        if column.startswith("attr_") and 1 < joined[column].nunique() <= MAX_GROUPS:
            out[column.removeprefix("attr_")] = joined[column].astype(str)
    return out


def over_representation(joined: pd.DataFrame, direction: pd.Series, classes: tuple[str, ...] | None) -> list[Group]:
    n = len(joined)
    features = groups_of(joined, classes)
    found = []
    for name in DIRECTIONS:
        chosen = (direction == name).to_numpy()
        for feature, values in features.items():
            for group, size in values.value_counts().sort_index().items():
                count = int((values.to_numpy()[chosen] == group).sum())
                p = fisher_greater(count, int(chosen.sum()), int(size), n) if chosen.any() else 1.0
                found.append(Group(name, feature, str(group), count, int(chosen.sum()), int(size), n, p))
    adjusted = holm([g.p for g in found]) if found else []
    return [Group(**{**g.__dict__, "p_holm": p}) for g, p in zip(found, adjusted, strict=True)]


def paired_clean(store, a: str, b: str, *, task: str | None = None,
                 choice: Choice | None = None) -> dict[str, pd.DataFrame]:  # fmt: skip
    """Per task, the two clean passes joined on their examples: label, attributes, and each model's
    ``prediction_a``/``_b`` and ``correct_a``/``_b``."""
    out = {}
    for (t, kind), (ra, rb) in pairings(store, a, b, task, choice).items():
        if kind != "clean":
            continue
        ka, kb = (store.examples_by_key(r["key"]) for r in (ra, rb))
        attributes = [c for c in ka.columns if c.startswith("attr_")]
        out[t] = ka[["example", "label", "prediction", "correct", *attributes]].merge(
            kb[["example", "prediction", "correct"]], on="example", suffixes=("_a", "_b")
        )
    if not out:
        raise CompareError(f"{a} and {b} have no paired clean passes to find exemplars in")
    return out


def exemplars(store, a: str, b: str, *, task: str | None = None, choice: Choice | None = None,
              classes: dict[str, tuple[str, ...]] | None = None) -> list[Exemplars]:  # fmt: skip
    """Per task, the exemplars of ``a`` against ``b`` from their paired clean passes."""
    return [exemplars_in(t, joined, (classes or {}).get(t))
            for t, joined in paired_clean(store, a, b, task=task, choice=choice).items()]  # fmt: skip


def exemplars_in(task: str, joined: pd.DataFrame, classes: tuple[str, ...] | None) -> Exemplars:
    """The exemplars of one task's paired clean passes (``paired_clean``)."""
    attributes = [c for c in joined.columns if c.startswith("attr_")]
    right_a, right_b = joined["correct_a"].astype(bool), joined["correct_b"].astype(bool)
    direction = pd.Series(np.where(right_a & ~right_b, DIRECTIONS[0], np.where(right_b & ~right_a,
                          DIRECTIONS[1], "")), index=joined.index)  # fmt: skip
    frame = joined.assign(direction=direction)[direction != ""]
    frame = frame[["example", "label", "prediction_a", "prediction_b", "direction", *attributes]]
    groups = over_representation(joined, direction, classes)
    return Exemplars(task, frame.reset_index(drop=True), len(joined), groups)
