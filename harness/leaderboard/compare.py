"""Paired comparison of two models on the same examples, from the per-example outputs in the store.

Per figure: both values, the difference (A - B) with its paired-bootstrap interval, and a paired
test: McNemar's exact test for per-example correct/incorrect outcomes (accuracy, robust accuracy,
accuracy under each corruption), a paired bootstrap for per-example scores (explanation quality:
the mean difference over its bootstrap standard error), and for out-of-distribution scores the
AUROC of each detector and OOD set (and for membership scores the AUC of each attack), its difference
drawn by a stratified bootstrap of the same examples on each side for both models.
The p-values are adjusted over all the figures compared (Holm), and each figure gets a verdict: A
better, B better, or no significant difference at 5%. Unpaired comparisons are refused: different
data (task fingerprints), or different examples (subsets, limits) with no set in common.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness import slices, stats
from harness.errors import HarnessError
from harness.measures import measure, outcomes
from harness.selection import Choice
from harness.store import JobRow

ALPHA = 0.05


class CompareError(HarnessError, ValueError):
    """Two models that cannot be compared pairwise; the message says why."""


@dataclass(frozen=True)
class Comparison:
    task: str
    metric: str  # the record metric compared, e.g. corruption.accuracy
    slice: str  # its slice, e.g. corruption=fog@3
    a: stats.Estimate
    b: stats.Estimate
    difference: stats.Estimate  # A - B, paired bootstrap interval
    test: str
    p: float
    p_holm: float = float("nan")
    higher_is_better: bool = True
    paired_on: str = ""  # which stored examples: "10,000 examples (clean)"

    @property
    def figure(self) -> str:
        """``accuracy.top1`` or ``corruption.accuracy corruption=fog@3``."""
        return self.metric if self.slice == slices.OVERALL else f"{self.metric} {self.slice}"

    @property
    def key(self) -> bool:
        """One of the figures shown unless all are asked for (each measure declares its key slices)."""
        declared = measure(self.metric)
        return declared is not None and declared.is_key(slices.parse(self.slice))

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


def _figure(kind: str, column: str) -> tuple[str, str, bool] | None:
    """The figure a per-example column stands for, as (record metric, slice, higher is better), from
    the metrics' declared measures; None for columns that are not outcomes (labels, predictions, norms,
    attributes)."""
    for declared in outcomes(kind):
        parts = declared.parts_of(kind, column)
        if parts is not None:
            return declared.name, slices.format(parts), declared.direction == "higher"
    return None


def same_spec(a: JobRow | None, b: JobRow | None) -> bool:
    """Whether two models' jobs measured the same thing the same way (their specs less the model); a
    clean pass (no job) or a legacy job (no spec) pairs on its examples alone."""
    if a is None or b is None:  # the clean pass has no job: it pairs with another clean pass
        return a is None and b is None
    if a.spec is None or b.spec is None:  # a legacy job: its examples decide
        return True
    return a.spec.without_model() == b.spec.without_model()


def pairings(store, a: str, b: str, task: str | None = None,
             choice: Choice | None = None) -> dict[tuple[str, str], tuple[dict, dict]]:  # fmt: skip
    """For each (task, kind of per-example output) both models have, the two stored sets that pair: the
    same examples and, for a metric's outputs, matching specs; the largest such set, then the latest.
    With a ``choice``, only the sets of the jobs it admits (and the clean passes on their examples)."""
    choice = choice or Choice()
    jobs = {job.key: job for job in store.jobs(models=[a, b])}
    admitted = {k for k, job in jobs.items() if choice.admits(job) or choice.names(job)}
    clean_ok = {(job.model, job.spec.examples.indices) for k, job in jobs.items() if k in admitted and job.spec}
    filtered = choice != Choice()

    def allowed(row: dict) -> bool:
        if not filtered:
            return True
        if row["job_key"] is None:
            return (row["model"], row["indices"]) in clean_ok
        return row["job_key"] in admitted

    sets = {m: [r for r in store.example_sets(models=[m], tasks=[task] if task else None) if allowed(r)]
            for m in (a, b)}  # fmt: skip
    for m, rows in sets.items():
        if not rows:
            where = (f" on {task}" if task else "") + (f" for {choice.describe()}" if filtered else "")
            raise CompareError(f"the store holds no per-example outputs of {m}{where}: run a suite with it first")
    tasks = sorted({r["task"] for r in sets[a]} & {r["task"] for r in sets[b]})
    if not tasks:
        raise CompareError(f"{a} and {b} were never evaluated on the same task: nothing to pair")
    out: dict[tuple[str, str], tuple[dict, dict]] = {}
    unpaired = []
    for t in tasks:
        ra_all = [r for r in sets[a] if r["task"] == t]
        rb_all = [r for r in sets[b] if r["task"] == t]
        prints_a = sorted({r["task_fingerprint"] for r in ra_all})
        prints_b = sorted({r["task_fingerprint"] for r in rb_all})
        if not set(prints_a) & set(prints_b):
            raise CompareError(f"{a} and {b} were evaluated on different data for {t} (task fingerprints "
                               f"{prints_a} and {prints_b})")  # fmt: skip
        for kind in sorted({r["kind"] for r in ra_all} & {r["kind"] for r in rb_all}):
            best, rank = None, None
            for ra in (r for r in ra_all if r["kind"] == kind):
                for rb in (r for r in rb_all if r["kind"] == kind):
                    if ra["indices"] != rb["indices"] or ra["task_fingerprint"] != rb["task_fingerprint"]:
                        continue
                    if not same_spec(jobs.get(ra["job_key"]), jobs.get(rb["job_key"])):
                        continue
                    candidate = (ra["rows"], max(ra["finished"], rb["finished"]))
                    if rank is None or candidate > rank:
                        best, rank = (ra, rb), candidate
            if best is None:
                sizes = sorted({r["rows"] for r in ra_all if r["kind"] == kind})
                other = sorted({r["rows"] for r in rb_all if r["kind"] == kind})
                unpaired.append(f"{t} ({kind}: {a} on {sizes} examples, {b} on {other}, none the same set with "
                                "the same settings)")  # fmt: skip
                continue
            out[t, kind] = best
    if not out:
        raise CompareError(f"{a} and {b} were evaluated on different examples of {'; '.join(unpaired)}: run both "
                           "with the same --limit and --seed")  # fmt: skip
    return out


def compare(store, a: str, b: str, *, task: str | None = None, resamples: int = 1000, seed: int = 0,
            choice: Choice | None = None) -> list[Comparison]:  # fmt: skip
    """Every per-example figure of ``a`` and ``b`` paired on the largest set of examples both were
    evaluated on with matching specs (``pairings``); each comparison says which (``paired_on``)."""
    if a == b:
        raise CompareError(f"compare needs two different models; both are {a!r}")
    out: list[Comparison] = []
    for (t, kind), (ra, rb) in pairings(store, a, b, task, choice).items():
        ka, kb = (store.examples_by_key(r["key"]).dropna(axis=1, how="all").infer_objects() for r in (ra, rb))
        if kind in ("ood", "membership"):  # scores of two or more sets of examples: their AUC, set by set
            out += _compare_detection(t, kind, ka, kb, resamples, seed)
            continue
        joined = ka.merge(kb, on="example", suffixes=("_a", "_b"))
        paired_on = f"{len(joined):,} examples ({kind})"
        for column in ka.columns:
            figure = _figure(kind, column)
            if figure is None or f"{column}_b" not in joined:
                continue
            c = _compare_column(t, figure, joined[f"{column}_a"], joined[f"{column}_b"], resamples, seed)
            out.append(Comparison(**{**c.__dict__, "paired_on": paired_on}))
    if not out:
        raise CompareError(f"{a} and {b} share no per-example outcome to compare")
    adjusted = holm([c.p for c in out])
    return [Comparison(**{**c.__dict__, "p_holm": p}) for c, p in zip(out, adjusted, strict=True)]


def _compare_detection(task: str, kind: str, ka: pd.DataFrame, kb: pd.DataFrame, resamples: int,
                       seed: int) -> list[Comparison]:  # fmt: skip
    """AUCs of stored scores, paired: OOD detection (ID against each set) and membership inference
    (members against non-members, the attacks' scores in place of the detectors')."""
    from harness.metrics.curves import paired_auc

    if kind == "membership":
        ka, kb = (k.assign(set=np.where(k.pop("member"), "in", "non-members")) for k in (ka.copy(), kb.copy()))
    metric, key = ("ood.auroc", "detector") if kind == "ood" else ("membership.auc", "attack")
    inside = "in-distribution examples and each OOD set" if kind == "ood" else "members and as many non-members"
    paired_on = f"{int((ka['set'] == 'in').sum()):,} {inside} ({kind})"
    found = paired_auc(ka, kb, resamples=resamples, seed=seed)
    return [Comparison(task, metric, slices.format({key: name} if kind == "membership" else {key: name, "set": where}),
                       ea, eb, diff, "paired stratified bootstrap", p, higher_is_better=kind == "ood",
                       paired_on=paired_on)
            for name, where, ea, eb, diff, p in found]  # fmt: skip


def _compare_column(task: str, figure: tuple[str, str, bool], xa: pd.Series, xb: pd.Series, resamples: int,
                    seed: int) -> Comparison:  # fmt: skip
    name, slice_, higher = figure
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
    return Comparison(task, name, slice_, stats.mean(va, **options), stats.mean(vb, **options), difference, test,
                      p, higher_is_better=higher)  # fmt: skip
