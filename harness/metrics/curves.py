"""Threshold curves over scores, vectorised over bootstrap resamples (rows of indices): the ROC and
precision-recall figures of out-of-distribution detection and the risk-coverage figures of selective
prediction. Ties are one threshold: a curve moves only where the score changes, as scikit-learn's do.

Conventions (docs/metrics.md): a score is higher for inputs more likely in-distribution (ID); ID is
the positive class of AUROC, AUPR-In and FPR@95%TPR (OpenOOD's paper and Liang et al.); AUPR-Out takes
OOD as positive with the scores negated. FPR@95%TPR is the fraction of OOD inputs accepted at the
highest threshold that accepts at least 95% of ID inputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from harness import stats

if TYPE_CHECKING:
    import pandas as pd

DETECTION = ("auroc", "aupr_in", "aupr_out", "fpr_at_95_tpr", "fpr_at_95_tpr_ood", "detection_accuracy")


def _tie_ends(sorted_scores: np.ndarray) -> np.ndarray:
    """Rows of descending scores -> True at the last position of each run of equal scores."""
    ends = np.ones(sorted_scores.shape, dtype=bool)
    ends[:, :-1] = sorted_scores[:, :-1] != sorted_scores[:, 1:]
    return ends


def _previous(values: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """For each position, the (non-decreasing) ``values`` at the previous tie end (0 before the first)."""
    at_ends = np.where(ends, values, 0.0)
    running = np.maximum.accumulate(at_ends, axis=1)
    return np.concatenate([np.zeros((len(values), 1)), running[:, :-1]], axis=1)


def detection(scores_in: np.ndarray, scores_out: np.ndarray, rows_in: np.ndarray,
              rows_out: np.ndarray) -> dict[str, np.ndarray]:  # fmt: skip
    """Each figure of ``DETECTION`` for each resample: ``rows_in`` [B, n_in] and ``rows_out`` [B, n_out]
    index the ID and OOD scores (a stratified bootstrap resamples each side on its own).

    The pooled scores are sorted once: a resample is how many times it draws each distinct score from
    each side, and every curve runs over the distinct scores (each a tie end), so a resample costs
    counting, not sorting."""
    n_in, n_out = rows_in.shape[1], rows_out.shape[1]
    values, group = np.unique(-np.concatenate([scores_in, scores_out]), return_inverse=True)
    g, b = len(values), len(rows_in)
    offsets = (np.arange(b) * g)[:, None]

    def counts(groups: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.bincount((groups[rows] + offsets).ravel(), minlength=b * g).reshape(b, g).astype(np.float64)

    c_in, c_out = counts(group[: len(scores_in)], rows_in), counts(group[len(scores_in) :], rows_out)
    tp, fp = np.cumsum(c_in, axis=1), np.cumsum(c_out, axis=1)  # accepted at each distinct score, descending
    tpr, fpr = tp / n_in, fp / n_out
    previous = np.concatenate([np.zeros((b, 1)), tpr[:, :-1]], 1), np.concatenate([np.zeros((b, 1)), fpr[:, :-1]], 1)
    area = ((fpr - previous[1]) * (tpr + previous[0]) / 2).sum(1)
    # the highest threshold accepting >= 95% of ID: the first distinct score whose cumulative ID count reaches it
    reach = np.argmax(tp >= np.ceil(0.95 * n_in), axis=1)
    accepted_out = fp[np.arange(b), reach] / n_out
    balanced = np.maximum((0.5 * tpr + 0.5 * (1 - fpr)).max(1), 0.5)  # 0.5: accept nothing
    # OOD positive: the same distinct scores ascending
    fn, tn = np.cumsum(c_out[:, ::-1], axis=1), np.cumsum(c_in[:, ::-1], axis=1)
    # the lowest threshold flagging >= 95% of OOD as OOD, and the share of ID flagged with them (the
    # convention of OpenOOD's and pytorch-ood's code)
    reach_ood = np.argmax(fn >= np.ceil(0.95 * n_out), axis=1)
    return {
        "auroc": area,
        "aupr_in": _precision_sum(c_in, tp, fp) / n_in,
        "aupr_out": _precision_sum(c_out[:, ::-1], fn, tn) / n_out,
        "fpr_at_95_tpr": accepted_out,
        "fpr_at_95_tpr_ood": tn[np.arange(b), reach_ood] / n_in,
        "detection_accuracy": balanced,
    }


def _precision_sum(gained: np.ndarray, hits: np.ndarray, misses: np.ndarray) -> np.ndarray:
    """Sum over thresholds of (positives gained) x precision: times 1 / positives, scikit-learn's
    average precision."""
    return (gained * hits / np.maximum(hits + misses, 1)).sum(1)


SELECTIVE_COVERAGES = (0.8, 0.9, 0.95, 1.0)  # 1.0: the error rate with no abstention
SELECTIVE_RISKS = (0.01, 0.05)


def risk_coverage(confidence: np.ndarray, wrong: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Selective-prediction figures for each resample (rows [B, n]) from per-example ``confidence``
    (higher: kept first) and ``wrong`` (0/1): the risk-coverage curve's area (AURC, Geifman et al.
    2019), its excess over the best ordering of the same errors (E-AURC), the area under the
    generalised risk-coverage curve (AUGRC, Traub et al. 2024: errors accepted / n), the selective risk
    at each coverage of ``SELECTIVE_COVERAGES`` (everything at least as confident as the example at that
    coverage is kept) and the largest coverage whose risk is at most each of ``SELECTIVE_RISKS``."""
    n = rows.shape[1]
    order = np.argsort(-confidence[rows], axis=1, kind="stable")
    ranked = np.take_along_axis(confidence[rows], order, 1)
    errors = np.take_along_axis(wrong[rows].astype(np.float64), order, 1)
    ends = _tie_ends(ranked)
    kept = np.arange(1, n + 1)
    cumulative = np.cumsum(errors, axis=1)
    risk = cumulative / kept
    coverage = np.broadcast_to(kept / n, risk.shape)
    steps = coverage - _previous(coverage, ends)
    aurc = np.where(ends, steps * risk, 0.0).sum(1)
    augrc = np.where(ends, steps * cumulative / n, 0.0).sum(1)
    m = cumulative[:, -1]  # errors of each resample: the best order keeps every correct example first
    best = np.array([(np.clip(kept - (n - e), 0, None) / kept).sum() / n for e in m])
    out = {"aurc": aurc, "e_aurc": aurc - best, "augrc": augrc}
    # the selective risk at a coverage: the first tie end at or beyond it (ties are kept together)
    end_positions = np.where(ends, kept, n + 1)
    for target in SELECTIVE_COVERAGES:
        reach = np.where(end_positions >= np.ceil(target * n), end_positions, n + 1).min(1)
        out[f"risk_at_{round(target * 100)}"] = risk[np.arange(len(risk)), reach - 1]
    for target in SELECTIVE_RISKS:
        fits = ends & (risk <= target)
        out[f"coverage_at_{round(target * 100)}"] = np.where(fits, coverage, 0.0).max(1)
    return out


def tpr_at_fpr(positives: np.ndarray, negatives: np.ndarray, rows_pos: np.ndarray, rows_neg: np.ndarray,
               fpr: float) -> np.ndarray:  # fmt: skip
    """For each resample, the share of positives scored above the highest threshold that lets at most
    ``fpr`` of the negatives through (strictly above the (floor(fpr n) + 1)-th largest negative score:
    at ``fpr`` = 0, above every negative). The ROC curve's TPR at that FPR, read at a tie end."""
    allowed = int(np.floor(fpr * rows_neg.shape[1] + 1e-9))
    threshold = -np.sort(-negatives[rows_neg], axis=1)[:, allowed]
    return (positives[rows_pos] > threshold[:, None]).mean(1)


Figures = Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]


def stratified(figures: Figures, n_pos: int, n_neg: int, *, resamples: int = 1000, seed: int = 0,
               block: int = 50) -> dict[str, stats.Estimate]:  # fmt: skip
    """Each of ``figures``' statistics (index rows of the positives and of the negatives -> arrays) with
    its 95% percentile bootstrap interval, positives and negatives resampled apart (their numbers fixed,
    as a detection or membership experiment fixes them)."""
    value = figures(np.arange(n_pos)[None], np.arange(n_neg)[None])
    rng = np.random.default_rng(seed)
    drawn: dict[str, list[np.ndarray]] = {k: [] for k in value}
    for start in range(0, resamples, block):
        b = min(block, resamples - start)
        for k, v in figures(rng.integers(0, n_pos, (b, n_pos)), rng.integers(0, n_neg, (b, n_neg))).items():
            drawn[k].append(v)
    return {k: stats.interval(float(value[k][0]), np.concatenate(drawn[k]), n_pos + n_neg, bounds=(0.0, 1.0))
            for k in value}  # fmt: skip


Paired = tuple[str, str, stats.Estimate, stats.Estimate, stats.Estimate, float]


def paired_auc(frame_a: pd.DataFrame, frame_b: pd.DataFrame, *, resamples: int = 1000, seed: int = 0) -> list[Paired]:
    """Two models' (or runs') stored scores of the same examples (``ood``'s: the set ``in`` against
    each OOD set; membership's: members as ``in``), per score column and set: both AUCs and their
    difference (A - B), the stratified bootstrap drawing the same examples of each side for both, and
    the two-sided p-value of no difference (the difference over its bootstrap standard error, against
    the normal)."""
    from scipy.stats import norm

    out = []
    columns = [c for c in frame_a.columns if c not in ("example", "set") and c in frame_b.columns]
    key = ["set", "example"]
    a, b = frame_a.sort_values(key, kind="stable"), frame_b.sort_values(key, kind="stable")
    if not np.array_equal(a[key].to_numpy(), b[key].to_numpy()):
        raise ValueError("the two sets of OOD scores are not on the same examples")
    inside = (a["set"] == "in").to_numpy()
    for name in sorted(set(a["set"]) - {"in"}):
        outside = (a["set"] == name).to_numpy()
        n_in, n_out = int(inside.sum()), int(outside.sum())
        rng = np.random.default_rng(seed)
        rows_in, rows_out = rng.integers(0, n_in, (resamples, n_in)), rng.integers(0, n_out, (resamples, n_out))
        for detector in columns:
            sides = []
            for frame in (a, b):
                s_in, s_out = frame[detector].to_numpy()[inside], frame[detector].to_numpy()[outside]
                value = detection(s_in, s_out, np.arange(n_in)[None], np.arange(n_out)[None])["auroc"][0]
                drawn = np.concatenate([detection(s_in, s_out, rows_in[i : i + 50], rows_out[i : i + 50])["auroc"]
                                        for i in range(0, resamples, 50)])  # fmt: skip
                sides.append((float(value), drawn))
            (va, da), (vb, db) = sides
            n = n_in + n_out
            diff = stats.interval(va - vb, da - db, n, bounds=(-1.0, 1.0))
            se = float(np.std(da - db, ddof=1))
            p = (1.0 if va == vb else 0.0) if se == 0 else float(2 * norm.sf(abs(va - vb) / se))
            out.append((detector, name, stats.interval(va, da, n, bounds=(0, 1)),
                        stats.interval(vb, db, n, bounds=(0, 1)), diff, p))  # fmt: skip
    return out
