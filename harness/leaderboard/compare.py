"""Paired comparison of two models on the same examples, from the per-example outputs in the store.

Per figure: both values, the difference (A - B) with its paired-bootstrap interval, and a paired
test: McNemar's exact test for per-example correct/incorrect outcomes (accuracy, robust accuracy,
accuracy under each corruption), a paired bootstrap for per-example scores (explanation quality:
the mean difference over its bootstrap standard error).
The p-values are adjusted over all the figures compared (Holm), and each figure gets a verdict: A
better, B better, or no significant difference at 5%. Unpaired comparisons are refused: different
data (task fingerprints), or different examples (subsets, limits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness import stats
from harness.errors import HarnessError

ALPHA = 0.05
LOWER_IS_BETTER = ("deletion_auc", "infidelity", "sensitivity_max")


class CompareError(HarnessError, ValueError):
    """Two models that cannot be compared pairwise; the message says why."""


@dataclass(frozen=True)
class Comparison:
    task: str
    figure: str  # e.g. accuracy.top1, corruption.accuracy fog@3, interpretability saliency/deletion_auc
    a: stats.Estimate
    b: stats.Estimate
    difference: stats.Estimate  # A - B, paired bootstrap interval
    test: str
    p: float
    p_holm: float = float("nan")
    higher_is_better: bool = True

    @property
    def verdict(self) -> str:
        if not self.p_holm < ALPHA:
            return "no significant difference"
        a_ahead = (self.difference.value > 0) == self.higher_is_better
        return "A better" if a_ahead else "B better"


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided exact McNemar p-value: the binomial test of the discordant pairs."""
    from scipy.stats import binomtest

    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def paired_bootstrap_p(d: np.ndarray, *, resamples: int, seed: int) -> float:
    """Two-sided p-value of a zero mean difference: the mean over its paired-bootstrap standard error,
    against the normal. (Counting resampled means beyond zero cannot go below 1 / resamples, which
    no Holm adjustment over dozens of figures would let through.)"""
    from scipy.stats import norm

    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]  # an example without a score on either side is not a pair
    if d.size == 0:
        raise ValueError("no paired examples with a finite difference: nothing to test")
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(1)
    se = float(means.std(ddof=1))
    if se == 0:
        return 1.0 if float(d.mean()) == 0 else 0.0
    return float(2 * norm.sf(abs(float(d.mean())) / se))


def holm(p: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input's order."""
    order = np.argsort(p)
    adjusted = np.empty(len(p))
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def _figure(kind: str, column: str) -> tuple[str, bool] | None:
    """The figure a per-example column stands for and whether higher is better; None for columns that
    are not outcomes (labels, predictions, norms, attributes)."""
    if kind == "clean":
        return ("accuracy.top1", True) if column == "correct" else None
    if kind == "adversarial" and column.startswith("robust_"):
        return f"adversarial.robust_accuracy {column.removeprefix('robust_')}", True
    if kind == "corruption" and "@" in column:
        return f"corruption.accuracy {column}", True
    if kind == "interpretability" and "/" in column:
        return f"interpretability {column}", not column.endswith(LOWER_IS_BETTER)
    return None


def latest_run(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the most recent run (a pair evaluated on two subsets has one set of rows per run),
    with only the columns of their kind and those columns' own types (outputs of several kinds come
    concatenated, each kind's columns empty in the others' rows)."""
    rows = frame[frame["run_id"] == frame["run_id"].max()]
    return rows.dropna(axis=1, how="all").infer_objects()


def compare(store, a: str, b: str, *, task: str | None = None, resamples: int = 1000,
            seed: int = 0) -> list[Comparison]:  # fmt: skip
    if a == b:
        raise CompareError(f"compare needs two different models; both are {a!r}")
    frames = {m: store.examples(models=[m], tasks=[task] if task else None) for m in (a, b)}
    for m, frame in frames.items():
        if frame.empty:
            raise CompareError(f"the store holds no per-example outputs of {m}" + (f" on {task}" if task else "")
                               + ": run a suite with it first")  # fmt: skip
    tasks = sorted(set(frames[a]["task"]) & set(frames[b]["task"]))
    if not tasks:
        raise CompareError(f"{a} and {b} were never evaluated on the same task: nothing to pair")
    out: list[Comparison] = []
    for t in tasks:
        fa, fb = frames[a][frames[a]["task"] == t], frames[b][frames[b]["task"] == t]
        prints_a, prints_b = sorted(set(fa["task_fingerprint"])), sorted(set(fb["task_fingerprint"]))
        if prints_a != prints_b:
            raise CompareError(f"{a} and {b} were evaluated on different data for {t} (task fingerprints "
                               f"{prints_a} and {prints_b})")  # fmt: skip
        for kind in sorted(set(fa["kind"]) & set(fb["kind"])):
            ka, kb = latest_run(fa[fa["kind"] == kind]), latest_run(fb[fb["kind"] == kind])
            if set(ka["example"]) != set(kb["example"]):
                raise CompareError(f"{a} and {b} were evaluated on different examples of {t} ({kind}: "
                                   f"{len(ka)} and {len(kb)} examples, {len(set(ka['example']) & set(kb['example']))} "
                                   "in common): run both with the same --limit and --seed")  # fmt: skip
            joined = ka.merge(kb, on="example", suffixes=("_a", "_b"))
            for column in ka.columns:
                figure = _figure(kind, column)
                if figure is None or f"{column}_b" not in joined:
                    continue
                out.append(_compare_column(t, figure, joined[f"{column}_a"], joined[f"{column}_b"], resamples, seed))
    if not out:
        raise CompareError(f"{a} and {b} share no per-example outcome to compare")
    adjusted = holm([c.p for c in out])
    return [Comparison(**{**c.__dict__, "p_holm": p}) for c, p in zip(out, adjusted, strict=True)]


def _compare_column(task: str, figure: tuple[str, bool], xa: pd.Series, xb: pd.Series, resamples: int,
                    seed: int) -> Comparison:  # fmt: skip
    name, higher = figure
    binary = xa.dtype == bool and xb.dtype == bool
    va, vb = xa.to_numpy(dtype=float), xb.to_numpy(dtype=float)
    keep = np.isfinite(va) & np.isfinite(vb)  # undefined scores (NaN) are left out of both
    va, vb = va[keep], vb[keep]
    options = {"resamples": resamples, "seed": seed}
    d = va - vb
    difference = stats.bootstrap(lambda rows: d[rows].mean(1), len(d), **options)
    if binary:
        test, p = "McNemar exact", mcnemar_exact(va.astype(bool), vb.astype(bool))
    else:
        test, p = "paired bootstrap", paired_bootstrap_p(d, **options)
    return Comparison(task, name, stats.mean(va, **options), stats.mean(vb, **options), difference, test, p,
                      higher_is_better=higher)  # fmt: skip
