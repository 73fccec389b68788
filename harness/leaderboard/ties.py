"""Which models are not significantly different from the best one in a leaderboard column.

Where the store holds per-example outcomes of the figure for both models (accuracy, robust accuracy,
accuracy under a corruption, explanation scores), the paired test of ``compare`` decides (McNemar's
exact test or a paired bootstrap), with Holm's adjustment over the models compared with the leader
in that column. Other figures (ECE, fairness gaps, latency) have no per-example outcome to pair:
there, overlapping 95% intervals count as not significantly different, which is the cautious side.
Throughput's spread (the min-max of repeats) is not a confidence interval: it is never tested.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness import slices
from harness.leaderboard.compare import ALPHA, holm, mcnemar_exact, paired_bootstrap_p
from harness.leaderboard.table import Board
from harness.measures import measure


def per_example(metric: str, slice: str) -> tuple[str, str] | None:
    """(kind, column) of the per-example outcome behind a figure, as its measure declares it, or None."""
    declared = measure(metric)
    return None if declared is None else declared.column(slices.parse(slice))


class Outcomes:
    """The per-example outputs behind a board's figures, each read from the store once: a metric's
    outputs by the job that made them, the clean pass by the examples of the job shown (for a job
    stored before specs, the pair's latest outputs of that kind)."""

    def __init__(self, store) -> None:
        self.store = store
        self.sets = store.example_sets()
        self.jobs = {job.key: job for job in store.jobs()}
        self.frames: dict[str, pd.DataFrame | None] = {}

    def get(self, job: str, model: str, task: str, kind: str, column: str) -> pd.Series | None:
        spec = self.jobs[job].spec if job in self.jobs else None
        if spec is None:  # a legacy job: which outputs it made is not known; the latest of the pair's, as before
            rows = [r for r in self.sets if (r["model"], r["task"], r["kind"]) == (model, task, kind)]
        elif kind == "clean":
            rows = [r for r in self.sets if (r["model"], r["task"], r["kind"], r["indices"]) ==
                    (model, task, "clean", spec.examples.indices)]  # fmt: skip
        else:
            rows = [r for r in self.sets if r["job_key"] == job and r["kind"] == kind]
        if not rows:
            return None
        key = rows[-1]["key"]
        if key not in self.frames:
            frame = self.store.examples_by_key(key)
            self.frames[key] = None if frame is None else frame.set_index("example")
        frame = self.frames[key]
        return frame[column] if frame is not None and column in frame else None


def _paired_p(a: pd.Series, b: pd.Series) -> float | None:
    if set(a.index) != set(b.index):
        return None  # not paired: different examples
    b = b.loc[a.index]
    keep = a.notna().to_numpy() & b.notna().to_numpy()
    va, vb = a.to_numpy()[keep], b.to_numpy()[keep]
    if a.dtype == bool and b.dtype == bool:
        return mcnemar_exact(va.astype(bool), vb.astype(bool))
    return paired_bootstrap_p(va.astype(float) - vb.astype(float), resamples=1000, seed=0)


def mark(board: Board, store) -> None:
    """Add ``<label> tie`` columns to ``board.frame``: True for a model not significantly different
    from the column's best in its (task, device), False where it is, NA for the best itself and for
    missing figures; and ``<label> tie by`` naming how it was decided."""
    frame = board.frame
    outcomes = Outcomes(store)
    for c in board.columns:
        label = c.headline.label
        ties = pd.Series(pd.NA, index=frame.index, dtype="boolean")
        how = pd.Series("", index=frame.index, dtype=object)
        for (task, _device), part in frame.groupby(["task", "device"]):
            part = part[part[label].notna()]
            if len(part) < 2:
                continue
            best = part[label].idxmax() if c.direction == "higher" else part[label].idxmin()
            if part.loc[best, f"{label} low"] == part.loc[best, f"{label} high"]:
                continue  # an exact figure (a count, a verdict): no sampling error to test against
            if (part[f"{label} interval"] == "range").any():
                continue  # min-max of repeated timings: a spread, not a confidence interval to test with
            source = per_example(c.headline.metric, c.headline.slice)
            jobs, names = part[f"{label} job"], part["model"]
            leader = outcomes.get(jobs[best], names[best], task, *source) if source else None
            tested: dict[int, float] = {}
            for i in part.index.drop(best):
                other = outcomes.get(jobs[i], names[i], task, *source) if leader is not None else None
                p = _paired_p(leader, other) if other is not None else None
                if p is not None:
                    tested[i] = p
                else:
                    overlap = part.loc[i, f"{label} low"] <= part.loc[best, f"{label} high"] and \
                        part.loc[best, f"{label} low"] <= part.loc[i, f"{label} high"]  # fmt: skip
                    ties[i], how[i] = bool(overlap), "overlapping 95% CIs"
            for i, p in zip(tested, holm(list(tested.values())) if tested else [], strict=True):
                ties[i], how[i] = bool(p >= ALPHA or math.isnan(p)), "paired test, Holm-adjusted"
        frame[f"{label} tie"] = ties
        frame[f"{label} tie by"] = how


def tie_mark(value: object) -> str:
    return " ≈" if value is True or (isinstance(value, np.bool_) and bool(value)) else ""
