"""Accuracy: top-1, top-5, balanced accuracy, macro-F1 and per-class accuracy, each with a 95% CI."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel

from harness import stats
from harness.measures import Measure
from harness.metrics.base import Metric, NoParams
from harness.registry import metrics

if TYPE_CHECKING:
    from harness.context import EvalContext
    from harness.records import Record
    from harness.stats import Estimate


def confusion(labels: np.ndarray, preds: np.ndarray, k: int) -> np.ndarray:
    """k x (k + 1) counts; the last column holds predictions that do not exist (non-finite logits)."""
    preds = np.where(preds < 0, k, preds)
    return np.bincount(labels * (k + 1) + preds, minlength=k * (k + 1)).reshape(k, k + 1)


def balanced_accuracy(cm: np.ndarray) -> np.ndarray:
    """Mean recall over the classes present, for confusion tables ``[..., k, k + 1]``."""
    k = cm.shape[-2]
    support = cm.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.diagonal(cm[..., :k], axis1=-2, axis2=-1) / support
    return np.nanmean(np.where(support > 0, recall, np.nan), axis=-1)


def macro_f1(cm: np.ndarray) -> np.ndarray:
    """Unweighted mean F1 over the classes that occur as a label or a prediction (scikit-learn's rule)."""
    k = cm.shape[-2]
    tp = np.diagonal(cm[..., :k], axis1=-2, axis2=-1).astype(float)
    fp = cm[..., :k].sum(-2) - tp
    fn = cm.sum(-1) - tp
    denom = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denom > 0, 2 * tp / denom, np.nan)
    return np.nanmean(f1, axis=-1)


@metrics.register("accuracy", "top-1, top-5, balanced accuracy, macro-F1 and per-class accuracy")
class Accuracy(Metric):
    name = "accuracy"
    category = "accuracy"
    measures = (
        Measure("accuracy.top1", "higher", "accuracy", ("class",), ("clean", "correct"), key_slices={}, percent=True),
        Measure("accuracy.top5", "higher", "accuracy", percent=True),
        Measure("accuracy.balanced", "higher", "accuracy", percent=True),
        Measure("accuracy.macro_f1", "higher", "accuracy", percent=True),
    )
    Params: type[BaseModel] = NoParams

    def compute(self, ctx: EvalContext, params: BaseModel) -> list[Record]:
        clean = ctx.clean
        k = ctx.task.num_classes
        opts = ctx.bootstrap_options
        top1 = stats.proportion(clean.correct, **opts)
        out = [ctx.record("accuracy.top1", top1, flags=at_chance(top1, clean.labels, ctx.task.classes))]
        if k > 5:
            out.append(ctx.record("accuracy.top5", stats.proportion(clean.correct_top(5), **opts)))
        cm = confusion(clean.labels, clean.preds, k)
        out.append(ctx.record("accuracy.balanced", stats.from_counts(balanced_accuracy, cm, **opts)))
        out.append(ctx.record("accuracy.macro_f1", stats.from_counts(macro_f1, cm, **opts)))
        for c, name in enumerate(ctx.task.classes):
            members = clean.labels == c
            if members.any():
                estimate = stats.proportion(clean.correct[members], **opts)
                out.append(ctx.record("accuracy.top1", estimate, slice={"class": name}))
        return out


def at_chance(top1: Estimate, labels: np.ndarray, classes: tuple[str, ...]) -> tuple[str, ...]:
    """A flag where top-1 accuracy is not above the share of the most common class (what always
    predicting it scores): untrained weights, a checkpoint that did not load as meant, or inputs
    preprocessed otherwise than the model was trained on."""
    counts = np.bincount(labels, minlength=len(classes))
    share = counts.max() / max(len(labels), 1)
    if top1.ci_low > share:
        return ()
    return (f"at-chance: top-1 accuracy {top1.value:.1%} is not above the {share:.1%} of always predicting "
            f"{classes[int(counts.argmax())]!r}: are the weights trained, and the inputs preprocessed as in "
            "training?",)  # fmt: skip
