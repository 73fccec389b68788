"""Fairness across groups, the way a reviewer audits a model (formulas and explanations: docs/metrics.md).

Per group of each sensitive feature, and of each named intersection (sex x race): the metrics of
fairlearn's ``MetricFrame`` (accuracy, balanced accuracy, selection rate, true and false positive
rates, false negative rate, precision, count). Per feature: demographic parity, equalized odds and
equal opportunity differences and ratios, the accuracy difference and the worst-group accuracy, from
fairlearn's MetricFrame. Every number has an interval whose coverage is simulated (docs/metrics.md):
group rates that are proportions Wilson's, gaps and ratios between groups from pairwise score
intervals (``harness.disparity``: at least 95%, where bootstraps of a gap covered 73-96%), the worst
group a simultaneous bootstrap interval over the table of counts (group x label x prediction), which
resamples exactly as a multinomial (``stats.resample_counts``). Groups under ``min_count`` examples
are reported and flagged, and left out of the worst group. An audit verdict per
feature and criterion compares each group's rate with a reference group's (default: the largest)
against a tolerance (default: the four-fifths rule, a ratio in [0.8, 1.25]): pass, fail, or
inconclusive where the ratio's interval (simultaneous over the judged groups) straddles the band.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness import stats
from harness.disparity import estimate as between_estimate
from harness.disparity import largest_gap, ratio_to_reference, smallest_ratio
from harness.measures import Measure
from harness.metrics.base import Metric
from harness.registry import metrics, unknown_name_message
from harness.tasks.tabular import bucketed

if TYPE_CHECKING:
    import pandas as pd

    from harness.context import EvalContext
    from harness.records import Record
    from harness.tasks.base import Task

MISSING = "missing"
SEP = " x "


class FairnessParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    features: tuple[str, ...] | None = Field(None, description="sensitive features; default: the task's")
    buckets: dict[str, tuple[float, ...]] = Field(
        default_factory=dict, description="continuous feature -> bucket edges, e.g. age: [25, 45, 65]"
    )
    intersections: tuple[tuple[str, ...], ...] = Field((), description="features to cross, e.g. [[sex, race]]")
    control_features: tuple[str, ...] = Field((), description="disparities within each value of these")
    min_count: int = Field(30, ge=1, description="groups smaller than this are flagged, not the worst group")
    tolerance: tuple[float, float] = Field((0.8, 1.25), description="allowed ratio to the reference group")
    reference: dict[str, str] = Field(default_factory=dict, description="feature -> reference group (default largest)")
    positive: int = Field(1, ge=0, description="the favourable class of a binary task")

    @field_validator("buckets")
    @classmethod
    def _increasing(cls, buckets: dict[str, tuple[float, ...]]) -> dict[str, tuple[float, ...]]:
        for feature, edges in buckets.items():
            if not edges or list(edges) != sorted(set(edges)):
                raise ValueError(f"buckets for {feature!r} must be increasing edges, got {list(edges)}")
        return buckets

    @field_validator("tolerance")
    @classmethod
    def _ordered(cls, tolerance: tuple[float, float]) -> tuple[float, float]:
        low, high = tolerance
        if not 0 < low <= 1 <= high:
            raise ValueError(f"tolerance must be (low, high) with 0 < low <= 1 <= high, got {list(tolerance)}")
        return tolerance


def group_columns(attributes: pd.DataFrame, params: FairnessParams, default: tuple[str, ...]) -> dict[str, pd.Series]:
    """Each sensitive feature (bucketed where asked) and each intersection, as string group labels;
    a missing value is its own group, never dropped."""
    available = [c for c in attributes.columns if c != "index"]
    features = params.features if params.features is not None else default
    wanted = [*features, *(f for pair in params.intersections for f in pair), *params.control_features]
    for feature in wanted:
        if feature not in available:
            raise ValueError(unknown_name_message("sensitive feature", feature, available))
    for feature in params.buckets:
        if feature not in available:
            raise ValueError(f"cannot bucket {feature!r}: not an attribute of this task; available: {available}")

    def labels(feature: str) -> pd.Series:
        column = attributes[feature]
        if feature in params.buckets:
            return bucketed(column, params.buckets[feature], MISSING)
        return column.astype(object).where(column.notna(), MISSING).astype(str)

    out = {feature: labels(feature) for feature in features}
    for pair in params.intersections:
        parts = [labels(f) for f in pair]
        combined = parts[0]
        for part in parts[1:]:
            combined = combined + "|" + part
        out[SEP.join(pair)] = combined
    for name, column in out.items():
        if column.nunique() < 2:
            raise ValueError(f"sensitive feature {name!r} has a single group ({column.iloc[0]!r}): nothing to compare")
    for name, group in params.reference.items():
        if name not in out:
            raise ValueError(f"reference group given for {name!r}, which is not audited; audited: {list(out)}")
        if group not in set(out[name]):
            raise ValueError(f"reference group {group!r} is not a group of {name!r}; its groups are "
                             f"{sorted(set(out[name]))}")  # fmt: skip
    return out


# statistics of count tables [..., G, 2, 2] (group, label, prediction), vectorised over resamples ------


@contextmanager
def quiet() -> Iterator[None]:
    """No warnings for the NaNs of undefined rates (a group without positives has no TPR): the
    statistics below leave them out on purpose."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def rate_counts(t: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each binary rate of a group as (successes, total) from its confusion counts ``[..., 2, 2]``
    (label by prediction): the proportions whose intervals are Wilson's and whose gaps and ratios
    between groups are ``harness.disparity``'s."""
    tn, fp, fn, tp = t[..., 0, 0], t[..., 0, 1], t[..., 1, 0], t[..., 1, 1]
    n = tn + fp + fn + tp
    return {
        "accuracy": (tp + tn, n),
        "selection_rate": (tp + fp, n),
        "true_positive_rate": (tp, tp + fn),
        "false_positive_rate": (fp, fp + tn),
        "false_negative_rate": (fn, fn + tp),
        "precision": (tp, tp + fp),
    }


def group_rates(t: np.ndarray) -> dict[str, np.ndarray]:
    """Every per-group rate of confusion counts ``[..., 2, 2]``, NaN where undefined. Balanced accuracy
    needs both classes: a group (or a resample of it) without positives or without negatives has none,
    rather than falling back to the one recall it has."""
    rates = {name: _div(k, n) for name, (k, n) in rate_counts(t).items()}
    tn, fp, fn, tp = t[..., 0, 0], t[..., 0, 1], t[..., 1, 0], t[..., 1, 1]
    n = tn + fp + fn + tp
    rates["balanced_accuracy"] = (rates["true_positive_rate"] + _div(tn, tn + fp)) / 2
    rates["precision"] = np.where(tp + fp > 0, rates["precision"], np.where(n > 0, 0.0, np.nan))  # sklearn: 0
    return rates


TPR_FPR = ("true_positive_rate", "false_positive_rate")
# name: (the families of rates it compares between groups, a gap (else a ratio), direction)
DISPARITIES: dict[str, tuple[tuple[str, ...], bool, str]] = {
    "demographic_parity_difference": (("selection_rate",), True, "lower"),
    "demographic_parity_ratio": (("selection_rate",), False, "higher"),
    "equalized_odds_difference": (TPR_FPR, True, "lower"),
    "equalized_odds_ratio": (TPR_FPR, False, "higher"),
    "equal_opportunity_difference": (("true_positive_rate",), True, "lower"),
    "equal_opportunity_ratio": (("true_positive_rate",), False, "higher"),
    "accuracy_difference": (("accuracy",), True, "lower"),
}


def disparity(
    name: str, counts: np.ndarray, confidence: float = stats.DEFAULT_CONFIDENCE
) -> tuple[float, float, float]:
    """A disparity of a binary task's per-group confusion counts ``[groups, 2, 2]`` with its interval
    (``harness.disparity``). Equal opportunity is judged with equalized odds' comparisons, so that its
    interval never reaches above or below the larger statistic's inconsistently."""
    families, is_gap, _ = DISPARITIES[name]
    counted = rate_counts(counts)
    pairs = len(counts) * (len(counts) - 1) // 2
    comparisons = pairs * len(TPR_FPR) if families == ("true_positive_rate",) else None
    between = largest_gap if is_gap else smallest_ratio
    value, low, high = between([counted[f][0] for f in families], [counted[f][1] for f in families], confidence,
                               comparisons)  # fmt: skip
    return float(value), float(low), float(high)


GROUP_RATES = ("accuracy", "balanced_accuracy", "selection_rate", "true_positive_rate", "false_positive_rate",
               "false_negative_rate", "precision")  # fmt: skip
SEVERITY = ("pass", "inconclusive", "fail")  # a group's verdict is its worst rate's
VERDICTS = {"pass": 1.0, "inconclusive": 0.5, "fail": 0.0}  # a verdict's value in its record


def _ratio_of(rate: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """A group's rate over the reference group's; both zero is a ratio of 1, the reference's alone
    zero an infinite one, either undefined an undefined one."""
    with quiet():
        out = np.where(reference > 0, rate / np.where(reference > 0, reference, 1), np.where(rate == 0, 1.0, np.inf))
    return np.where(np.isnan(rate) | np.isnan(reference), np.nan, out)


CRITERIA = {  # verdict: the rates whose ratio to the reference group must stay within the tolerance
    "demographic_parity": ("selection_rate",),
    "equalized_odds": ("true_positive_rate", "false_positive_rate"),
    "equal_opportunity": ("true_positive_rate",),
}


def disparities_of(difference: pd.Series, ratio_: pd.Series) -> dict[str, float]:
    """The disparities from a MetricFrame's ``difference()`` and ``ratio()`` (between groups), combined
    as fairlearn's functions combine them (equalized odds: the worse of the TPR and FPR gaps)."""
    tpr, fpr = "true_positive_rate", "false_positive_rate"
    return {
        "demographic_parity_difference": difference["selection_rate"],
        "demographic_parity_ratio": ratio_["selection_rate"],
        "equalized_odds_difference": max(difference[tpr], difference[fpr]),
        "equalized_odds_ratio": min(ratio_[tpr], ratio_[fpr]),
        "equal_opportunity_difference": difference[tpr],
        "equal_opportunity_ratio": ratio_[tpr],
        "accuracy_difference": difference["accuracy"],
    }


def group_metrics() -> dict[str, Callable[..., float]]:
    """The per-group metrics, as the functions fairlearn's ``MetricFrame`` applies to each group."""
    import fairlearn.metrics as fm
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, precision_score

    return {
        "accuracy": accuracy_score,
        "balanced_accuracy": balanced_accuracy_score,
        "selection_rate": fm.selection_rate,
        "true_positive_rate": fm.true_positive_rate,
        "false_positive_rate": fm.false_positive_rate,
        "false_negative_rate": fm.false_negative_rate,
        "precision": lambda a, b: precision_score(a, b, zero_division=0),
        "count": fm.count,
    }


def metric_frame(y: np.ndarray, yhat: np.ndarray, groups: pd.Series, control: pd.Series | None) -> Any:
    """fairlearn's ``MetricFrame`` of the per-group metrics (by group, or by control value and group)."""
    import fairlearn.metrics as fm

    with warnings.catch_warnings():  # a group with one label only: sklearn warns, the rate is nan
        warnings.simplefilter("ignore")
        return fm.MetricFrame(metrics=group_metrics(), y_true=y, y_pred=yhat, sensitive_features=groups.rename(
            "group"), control_features=None if control is None else control.rename("control"))  # fmt: skip


@metrics.register("fairness", "per-group metrics (fairlearn MetricFrame), disparities with CIs, audit verdicts")
class Fairness(Metric):
    name = "fairness"
    # 2: verdicts pass / fail / inconclusive from the ratio's interval; undefined rates unjudged
    # 3: whole-number buckets named by their closed bounds (25-44, 65+, as the data's age groups); a
    #    worst-group figure's n is that group's size, a disparity's the smallest compared group's
    # 4: intervals that cover (harness.disparity): gaps and ratios from pairwise Newcombe and MOVER-R intervals,
    #    verdicts from simultaneous MOVER-R ratios to the reference, group rates Wilson's; balanced accuracy
    #    needs both classes (in the data and in each resample)
    version = 4
    task_params = ("features", "buckets", "intersections", "control_features", "reference")
    category = "fairness"
    measures = (
        *(Measure(f"fairness.{rate}", "lower" if rate in ("false_positive_rate", "false_negative_rate") else "higher",
                  "fairness", ("<feature>", "<control feature>"), percent=rate == "accuracy")
          for rate in GROUP_RATES),
        Measure("fairness.count", "higher", "fairness", ("<feature>", "<control feature>")),
        Measure("fairness.recall", "higher", "fairness", ("<feature>", "class"), percent=True),
        *(Measure(f"fairness.{name}", direction, "fairness", ("feature", "<control feature>"))
          for name, (_, _, direction) in DISPARITIES.items()),
        Measure("fairness.accuracy_difference", "lower", "fairness", ("feature",)),
        Measure("fairness.worst_group_accuracy", "higher", "fairness", ("feature", "<control feature>"), percent=True),
        Measure("fairness.verdict", "higher", "fairness", ("feature", "criterion", "<control feature>"),
                verdicts={1.0: "pass", 0.5: "inconclusive", 0.0: "fail"}),
    )  # fmt: skip
    needs = frozenset({"predictions"})  # top-1 predictions only: stored ones serve
    Params: type[BaseModel] = FairnessParams

    def check(self, task: Task, params: BaseModel) -> None:
        assert isinstance(params, FairnessParams)
        if not (params.features or task.sensitive):
            raise ValueError(
                f"task {task.name} declares no sensitive attributes: name the columns that hold them (for hf: and "
                "csv: tasks the task option attributes=[...] or sensitive=[...]), or the metric's features"
            )
        group_columns(task.load().attributes, params, task.sensitive)

    def compute(self, ctx: EvalContext, params: BaseModel) -> list[Record]:
        assert isinstance(params, FairnessParams)
        attributes = ctx.split.attributes.reset_index(drop=True)
        columns = group_columns(attributes, params, ctx.task.sensitive)
        y, yhat = ctx.predictions()
        if ctx.task.num_classes != 2:
            return [r for name, groups in columns.items() for r in self._multiclass(ctx, name, groups, y, yhat)]
        y = (y == params.positive).astype(np.int64)
        yhat = (yhat == params.positive).astype(np.int64)  # a non-finite row counts as not selected (flagged)
        controls: dict[str | None, pd.Series | None] = {None: None} if not params.control_features else {
            c: attributes[c].astype(object).where(attributes[c].notna(), MISSING).astype(str)
            for c in params.control_features
        }  # fmt: skip
        out: list[Record] = []
        for control_name, control in controls.items():
            for name, groups in columns.items():
                frame = metric_frame(y, yhat, groups, control)
                with quiet():
                    difference, ratio_ = frame.difference(method="between_groups"), frame.ratio(method="between_groups")
                if control is None:
                    fair = disparities_of(difference, ratio_)
                    out += self._binary(ctx, params, name, groups, y, yhat, frame.by_group, fair, {})
                    continue
                for value in sorted(control.unique()):
                    rows = (control == value).to_numpy()
                    table = frame.by_group.xs(value, level="control")
                    fair = disparities_of(difference.loc[value], ratio_.loc[value])
                    out += self._binary(ctx, params, name, groups[rows], y[rows], yhat[rows], table, fair,
                                        {control_name: value})  # fmt: skip
        return out

    def _binary(self, ctx: EvalContext, params: FairnessParams, feature: str, groups: pd.Series, y: np.ndarray,
                yhat: np.ndarray, by_group: pd.DataFrame, fair: dict[str, float],
                where: dict[str, str]) -> list[Record]:  # fmt: skip
        import pandas as pd

        names = sorted(groups.unique())
        codes = pd.Categorical(groups, categories=names).codes.astype(np.int64)  # int8 for few groups: would overflow
        counts = np.bincount(codes * 4 + y * 2 + yhat, minlength=len(names) * 4).reshape(len(names), 2, 2)
        sizes = counts.sum((1, 2))
        small = [g for g, n in zip(names, sizes, strict=True) if n < params.min_count]
        opts = ctx.bootstrap_options
        out: list[Record] = []
        info: dict[str, Any] = {"groups": {g: int(n) for g, n in zip(names, sizes, strict=True)}, "small_groups": small,
                                "min_count": params.min_count}  # fmt: skip
        ours = group_rates(counts)
        resampled = stats.resample_counts(counts, **opts)  # one set of draws for every statistic of the table
        undefined = sorted(
            {names[i] for i in range(len(names)) if np.isnan(ours["true_positive_rate"][i])}
            | {names[i] for i in range(len(names)) if np.isnan(ours["false_positive_rate"][i])}
        )
        counted = rate_counts(counts)
        for i, group in enumerate(names):
            flags = (f"small-group(n={sizes[i]}<{params.min_count})",) if sizes[i] < params.min_count else ()
            row = by_group.loc[group]
            for metric in GROUP_RATES:
                if np.isnan(ours[metric][i]):
                    continue  # undefined here (no positive or no negative examples; fairlearn says 0): no record
                k, total = (int(x[i]) for x in counted.get(metric, (np.zeros(len(names)),) * 2))
                if total > 0:  # a proportion: Wilson's interval
                    estimate = stats.counted(k, total)
                else:  # balanced accuracy, and precision where nothing is selected (sklearn's 0)
                    estimate = stats.from_resampled(lambda t, i=i, m=metric: group_rates(t)[m][..., i], counts,
                                                    resampled)  # fmt: skip
                estimate = replace(estimate, value=float(row[metric]), n=int(sizes[i]))  # fairlearn's value
                out.append(ctx.record(f"fairness.{metric}", estimate, slice={feature: group, **where}, flags=flags))
            n = int(sizes[i])
            out.append(ctx.record("fairness.count", stats.exact(n, n), slice={feature: group, **where}, flags=flags))
        flags = ("small-groups=" + ";".join(small),) if small else ()
        if undefined:
            flags = (*flags, "undefined-rates=" + ";".join(undefined))
            info = {**info, "undefined_rates": undefined}
        slice_ = {"feature": feature, **where}
        for metric, (_, is_gap, _) in DISPARITIES.items():
            value, low, high = disparity(metric, counts)
            if not np.isfinite(value):
                continue  # no two groups have the rate defined: nothing to compare
            # fairlearn's value where every group's rates are defined (and a ratio's maximum is not 0): the
            # same as the harness's, which also leaves undefined rates out and calls equal zero rates a ratio of 1
            if np.isfinite(fair[metric]) and not undefined:
                value = float(fair[metric])
            # n: the smallest group's size, which bounds how precisely any gap between groups is known
            estimate = between_estimate(value, low, high, int(sizes.min()), "newcombe" if is_gap else "mover")
            out.append(ctx.record(f"fairness.{metric}", estimate, slice=slice_, params=info, flags=flags))
        eligible = np.flatnonzero(sizes >= params.min_count)
        if len(eligible):
            accuracy = group_rates(counts[None])["accuracy"][0, eligible]
            which, estimate = stats.minimum(accuracy, group_rates(resampled)["accuracy"][:, eligible], 0)
            worst = int(eligible[which])
            excluded = {g: f"n < {params.min_count}" for g in small}
            out.append(
                ctx.record(
                    "fairness.worst_group_accuracy",
                    replace(estimate, n=int(sizes[worst])),
                    slice=slice_,
                    params={**info, "excluded": excluded, "worst_group": names[worst]},
                )
            )
        out += self._verdicts(ctx, params, feature, names, counts, sizes, where)
        return out

    def _verdicts(self, ctx: EvalContext, params: FairnessParams, feature: str, names: list[str], counts: np.ndarray,
                  sizes: np.ndarray, where: dict[str, str]) -> list[Record]:  # fmt: skip
        """Per criterion: each judged group's ratio of rates to the reference group, with its MOVER-R
        interval simultaneous over the criterion's judged (group, rate) ratios (Bonferroni), against the
        tolerance band. A group fails when the whole interval lies outside the band, passes when it lies
        inside, and is inconclusive otherwise; the criterion fails if any group fails, is inconclusive
        if any is, and passes otherwise (value 1 pass, 0.5 inconclusive, 0 fail): each wrong verdict has
        probability at most 5%. A rate undefined for a group (no positives: no true-positive rate)
        leaves that group unjudged and flags the record; it is never taken as 0."""
        reference = params.reference.get(feature) or names[int(np.argmax(sizes))]
        r = names.index(reference)
        low, high = params.tolerance
        ours = group_rates(counts[None])
        counted = rate_counts(counts)
        out = []
        for criterion, rates in CRITERIA.items():
            ratios: dict[str, dict[str, list[float]]] = {}
            outcome: dict[str, str] = {}
            undefined: list[str] = []
            judged = [i for i, (g, n) in enumerate(zip(names, sizes, strict=True))
                      if g != reference and n >= params.min_count]  # fmt: skip
            comparisons = len(judged) * len(rates)
            for i in judged:
                group = names[i]
                for rate in rates:
                    value = _ratio_of(ours[rate][..., i], ours[rate][..., r])[0]
                    if not np.isfinite(value):
                        undefined.append(f"{group}:{rate}")
                        continue
                    k, total = counted[rate]
                    lo, hi = ratio_to_reference(k[i], total[i], k[r], total[r], comparisons)
                    lo, hi = min(float(lo), value), max(float(hi), value)
                    ratios.setdefault(group, {})[rate] = [float(value), lo, hi]
                    judged_as = (
                        "pass" if low <= lo and hi <= high else "fail" if hi < low or lo > high else "inconclusive"
                    )
                    outcome[group] = max(outcome.get(group, "pass"), judged_as, key=SEVERITY.index)  # the worst rate
            if not outcome:
                continue  # no group could be judged (every rate undefined): no verdict, the disparities say why
            failing = [g for g, v in outcome.items() if v == "fail"]
            unsure = [g for g, v in outcome.items() if v == "inconclusive"]
            verdict = "fail" if failing else "inconclusive" if unsure else "pass"
            flags = ("undefined-rates=" + ";".join(undefined),) if undefined else ()
            out.append(
                ctx.record(
                    "fairness.verdict",
                    stats.exact(VERDICTS[verdict], int(sizes.sum())),
                    slice={"feature": feature, "criterion": criterion, **where},
                    flags=flags,
                    params={
                        "verdict": verdict,
                        "reference": reference,
                        "tolerance": [low, high],
                        "ratios": ratios,
                        "failing": failing,
                        "inconclusive": unsure,
                        "undefined": undefined,
                        "not_judged": {
                            g: f"n < {params.min_count}"
                            for g, n in zip(names, sizes, strict=True)
                            if n < params.min_count and g != reference
                        },
                    },
                )
            )
        return out

    def _multiclass(self, ctx: EvalContext, feature: str, groups: pd.Series, y: np.ndarray,
                    yhat: np.ndarray) -> list[Record]:  # fmt: skip
        """Per-group accuracy, per-group per-class recall (one-vs-rest), accuracy gap and worst group."""
        import pandas as pd

        k = ctx.task.num_classes
        names = sorted(groups.unique())
        codes = pd.Categorical(groups, categories=names).codes.astype(np.int64)  # int8 for few groups: would overflow
        yhat = np.where(yhat < 0, k, yhat)
        counts = np.bincount((codes * k + y) * (k + 1) + yhat, minlength=len(names) * k * (k + 1))
        counts = counts.reshape(len(names), k, k + 1)
        resampled = stats.resample_counts(counts, **ctx.bootstrap_options)

        def accuracy(t: np.ndarray) -> np.ndarray:
            return _div(np.diagonal(t[..., :k], axis1=-2, axis2=-1).sum(-1), t.sum((-1, -2)))

        sizes = counts.sum((1, 2))
        out = []
        for i, group in enumerate(names):
            estimate = stats.counted(int(np.trace(counts[i, :, :k])), int(sizes[i]))
            out.append(ctx.record("fairness.accuracy", estimate, slice={feature: group}))
            for c in range(k):
                if counts[i, c].sum() == 0:
                    continue
                recall = stats.counted(int(counts[i, c, c]), int(counts[i, c].sum()))
                out.append(ctx.record("fairness.recall", recall, slice={feature: group, "class": ctx.task.classes[c]}))
        value, low, high = largest_gap([np.diagonal(counts[..., :k], axis1=-2, axis2=-1).sum(-1)], [sizes])
        difference = between_estimate(float(value), float(low), float(high), int(sizes.min()), "newcombe")
        out.append(ctx.record("fairness.accuracy_difference", difference, slice={"feature": feature}))
        which, worst = stats.minimum(accuracy(counts[None])[0], accuracy(resampled), 0)
        out.append(
            ctx.record(
                "fairness.worst_group_accuracy",
                replace(worst, n=int(sizes[which])),
                slice={"feature": feature},
                params={"worst_group": names[which]},
            )
        )
        return out
