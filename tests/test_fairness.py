"""The fairness metric against fairlearn's own functions and an independent pandas group-by, on known
and random predictions; edge cases; bad input."""

from __future__ import annotations

import fairlearn.metrics as fm
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.metrics.fairness import Fairness, FairnessParams, bucketed
from harness.tasks.tabular import age_group
from tests.helpers import context_for

DISPARITY_FUNCTIONS = {
    "demographic_parity_difference": fm.demographic_parity_difference,
    "demographic_parity_ratio": fm.demographic_parity_ratio,
    "equalized_odds_difference": fm.equalized_odds_difference,
    "equalized_odds_ratio": fm.equalized_odds_ratio,
    "equal_opportunity_difference": fm.equal_opportunity_difference,
    "equal_opportunity_ratio": fm.equal_opportunity_ratio,
}


def evaluate(y, yhat, attributes: pd.DataFrame, resamples: int = 200, **params):
    logits = np.where(np.eye(2)[np.asarray(yhat)] > 0, 5.0, -5.0)
    ctx = context_for(logits, np.asarray(y), resamples=resamples, attributes=attributes)
    return Fairness().compute(ctx, FairnessParams(**params))


def by(records, metric, slice_):
    return next(r for r in records if r.metric == f"fairness.{metric}" and r.slice == slice_)


@pytest.fixture(scope="module")
def random_case():
    rng = np.random.default_rng(0)
    n = 3000
    group = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    y = rng.integers(0, 2, n)
    bias = np.select([group == "a", group == "b"], [0.1, -0.1], 0.0)
    yhat = (rng.random(n) < np.clip(0.3 + 0.4 * y + bias, 0, 1)).astype(int)
    attributes = pd.DataFrame({"g": group, "h": rng.choice(["x", "y"], size=n)})
    return y, yhat, attributes, evaluate(y, yhat, attributes, intersections=(("g", "h"),))


def test_disparities_match_fairlearn(random_case):
    y, yhat, attributes, records = random_case
    for name, function in DISPARITY_FUNCTIONS.items():
        expected = function(y, yhat, sensitive_features=attributes["g"])
        assert by(records, name, "feature=g").value == pytest.approx(expected), name
    frame = fm.MetricFrame(metrics=fm.count, y_true=y, y_pred=yhat, sensitive_features=attributes["g"])
    assert by(records, "count", "g=a").value == frame.by_group["a"]
    crossed = attributes["g"] + "|" + attributes["h"]
    expected = fm.demographic_parity_difference(y, yhat, sensitive_features=crossed)
    assert by(records, "demographic_parity_difference", "feature=g x h").value == pytest.approx(expected)


def test_group_metrics_match_an_independent_groupby(random_case):
    y, yhat, attributes, records = random_case
    frame = pd.DataFrame({"y": y, "p": yhat, "g": attributes["g"]})
    for group, rows in frame.groupby("g"):
        tp = ((rows.y == 1) & (rows.p == 1)).sum()
        fp = ((rows.y == 0) & (rows.p == 1)).sum()
        fn = ((rows.y == 1) & (rows.p == 0)).sum()
        tn = ((rows.y == 0) & (rows.p == 0)).sum()
        expected = {
            "accuracy": (tp + tn) / len(rows), "selection_rate": (tp + fp) / len(rows),
            "true_positive_rate": tp / (tp + fn), "false_positive_rate": fp / (fp + tn),
            "false_negative_rate": fn / (fn + tp), "precision": tp / (tp + fp),
            "balanced_accuracy": (tp / (tp + fn) + tn / (tn + fp)) / 2,
        }  # fmt: skip
        for metric, value in expected.items():
            record = by(records, metric, f"g={group}")
            assert record.value == pytest.approx(value), (group, metric)
            assert record.ci_low <= record.value <= record.ci_high and record.n == len(rows)
    rates = frame.assign(sel=frame.p).groupby("g")["sel"].mean()
    assert by(records, "demographic_parity_difference", "feature=g").value == pytest.approx(rates.max() - rates.min())
    accuracy = frame.assign(ok=frame.y == frame.p).groupby("g")["ok"].mean()
    assert by(records, "accuracy_difference", "feature=g").value == pytest.approx(accuracy.max() - accuracy.min())
    worst = by(records, "worst_group_accuracy", "feature=g")
    sizes = frame.groupby("g").size()
    assert worst.value == pytest.approx(accuracy.min())
    # n: the worst group's size (not the split's); a disparity's: the smallest group's
    assert worst.params["worst_group"] == accuracy.idxmin() and worst.n == sizes[accuracy.idxmin()] < len(frame)
    assert by(records, "demographic_parity_difference", "feature=g").n == sizes.min()


def test_identical_outcomes_give_zero_gaps_and_unit_ratios():
    # two groups with exactly the same confusion table
    y = np.array([1, 1, 0, 0, 1, 0] * 20)
    yhat = np.array([1, 0, 1, 0, 1, 0] * 20)
    attributes = pd.DataFrame({"g": ["a"] * 60 + ["b"] * 60})
    records = evaluate(y, yhat, attributes)
    for name in DISPARITY_FUNCTIONS:
        expected = 0.0 if name.endswith("difference") else 1.0
        record = by(records, name, "feature=g")
        assert record.value == pytest.approx(expected) and record.ci_low <= record.value <= record.ci_high
    criteria = ("demographic_parity", "equalized_odds", "equal_opportunity")
    # equal rates on 60 examples a group: the ratio is 1, but its 95% interval reaches past the band
    verdicts = [by(records, "verdict", f"feature=g,criterion={c}") for c in criteria]
    assert all(v.params["verdict"] == "inconclusive" and v.value == 0.5 for v in verdicts)
    assert all(v.params["ratios"]["b"][rate][0] == 1 for v in verdicts for rate in v.params["ratios"]["b"])
    many = evaluate(np.tile(y, 50), np.tile(yhat, 50), pd.concat([attributes] * 50).sort_values("g"))
    assert all(by(many, "verdict", f"feature=g,criterion={c}").params["verdict"] == "pass" for c in criteria)


def test_outcomes_decided_by_the_group_give_the_extremes():
    group = np.array(["a"] * 50 + ["b"] * 50)
    y = np.tile([0, 1], 50)
    yhat = (group == "a").astype(int)  # everyone in a is selected, no one in b
    records = evaluate(y, yhat, pd.DataFrame({"g": group}))
    assert by(records, "demographic_parity_difference", "feature=g").value == 1
    assert by(records, "demographic_parity_ratio", "feature=g").value == 0
    assert by(records, "equalized_odds_difference", "feature=g").value == 1
    verdict = by(records, "verdict", "feature=g,criterion=demographic_parity")
    assert verdict.value == 0 and verdict.params["failing"] == ["b"] and verdict.params["reference"] == "a"


def test_small_groups_are_flagged_and_left_out_of_the_worst_group():
    rng = np.random.default_rng(1)
    group = np.array(["big"] * 200 + ["tiny"] * 5)
    y = rng.integers(0, 2, 205)
    yhat = y.copy()
    yhat[200:] = 1 - y[200:]  # the tiny group is always wrong
    records = evaluate(y, yhat, pd.DataFrame({"g": group}), min_count=30)
    assert any(f.startswith("small-group") for f in by(records, "accuracy", "g=tiny").flags)
    worst = by(records, "worst_group_accuracy", "feature=g")
    assert worst.value == 1.0 and worst.params["excluded"] == {"tiny": "n < 30"}
    # the only other group is too small to judge: no verdict at all (not a pass by default)
    assert not [r for r in records if r.metric == "fairness.verdict"]
    parity = by(records, "demographic_parity_ratio", "feature=g")
    assert parity.params["small_groups"] == ["tiny"] and any(f.startswith("small-groups=") for f in parity.flags)


def test_missing_values_form_their_own_group_and_buckets_have_stated_edges():
    ages = pd.Series([18, 30, None, 70, 44, 45])
    # whole numbers by their closed bounds, as the data's own age groups (tasks.tabular.age_group) are written
    assert bucketed(ages, (25, 45, 65)).tolist() == ["<25", "25-44", "missing", "65+", "25-44", "45-64"]
    assert bucketed(ages, (25, 45, 65)).tolist() == age_group(ages).tolist()
    # other values by their half-open intervals
    assert bucketed(pd.Series([0.2, 0.5, 1.5, 2.0]), (0.5, 2)).tolist() == ["<0.5", "[0.5, 2)", "[0.5, 2)", ">=2"]
    group = pd.Series(["a", None] * 40)
    y = np.tile([0, 1], 40)
    records = evaluate(y, y, pd.DataFrame({"g": group}))
    assert by(records, "count", "g=missing").value == 40


def test_multiclass_reports_group_accuracy_and_recall():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 300)
    yhat = np.where(rng.random(300) < 0.7, y, rng.integers(0, 3, 300))
    group = rng.choice(["a", "b"], 300)
    logits = np.eye(3)[yhat] * 5
    ctx = context_for(logits, y, attributes=pd.DataFrame({"g": group}))
    records = Fairness().compute(ctx, FairnessParams())
    for g in ("a", "b"):
        rows = group == g
        assert by(records, "accuracy", f"g={g}").value == pytest.approx((y[rows] == yhat[rows]).mean())
        for c in range(3):
            recall = (yhat[rows & (y == c)] == c).mean()
            assert by(records, "recall", f"g={g},class=c{c}").value == pytest.approx(recall)


def test_control_features_give_disparities_within_each_stratum(random_case):
    y, yhat, attributes, _ = random_case
    records = evaluate(y, yhat, attributes, features=("g",), control_features=("h",))
    for value in ("x", "y"):
        rows = (attributes["h"] == value).to_numpy()
        expected = fm.demographic_parity_difference(y[rows], yhat[rows], sensitive_features=attributes["g"][rows])
        assert by(records, "demographic_parity_difference", f"feature=g,h={value}").value == pytest.approx(expected)


def test_bad_input_names_the_feature_and_what_exists():
    y = np.tile([0, 1], 20)
    attributes = pd.DataFrame({"sex": ["f", "m"] * 20, "one": ["x"] * 40})
    with pytest.raises(ValueError, match=r"unknown sensitive feature 'race'.*Known sensitive features: sex, one"):
        evaluate(y, y, attributes, features=("race",))
    with pytest.raises(ValueError, match="reference group 'x' is not a group of 'sex'"):
        evaluate(y, y, attributes, features=("sex",), reference={"sex": "x"})
    with pytest.raises(ValueError, match="'one' has a single group"):
        evaluate(y, y, attributes, features=("one",))


def test_bad_fairness_settings_stop_the_run_before_it_starts(tmp_path):
    from tests.test_cli import harness

    suite = tmp_path / "bad.yaml"
    suite.write_text("name: bad\ngroups:\n  - tasks: [adult]\n    models: [zoo:adult-mlp]\n"
                     "    metrics: [{fairness: {features: [sex, rac]}}]\n")  # fmt: skip
    proc = harness("run", "--config", str(suite), store=tmp_path / "store", check=False)
    assert proc.returncode == 2
    assert "unknown sensitive feature 'rac'. Did you mean 'race'?" in " ".join(proc.stderr.split())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(1, 60).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(0, 1), min_size=n, max_size=n),
            st.lists(st.integers(0, 1), min_size=n, max_size=n),
            st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n),
        )
    )
)
def test_properties_on_random_labels_predictions_and_groups(case):
    y, yhat, group = (np.asarray(v) for v in case)
    if len(set(group.tolist())) < 2:
        return  # a single group is bad input (tested above)
    records = evaluate(y, yhat, pd.DataFrame({"g": group}), resamples=50, min_count=1)
    for r in records:
        if r.metric == "fairness.verdict" or r.metric == "fairness.count":
            continue
        assert r.ci_low - 1e-12 <= r.value <= r.ci_high + 1e-12, r
        if r.metric.endswith("_difference") or r.metric.endswith("_ratio"):
            assert 0 <= r.value <= 1, r


def test_fairness_reuses_stored_predictions_without_running_the_model(tmp_path):
    """A second run that only adds the fairness metric reads the clean predictions the first run stored
    for the same fingerprints: the model is not called, and the numbers are those of a fresh pass."""
    from harness import runner
    from harness.config import parse_suite
    from harness.models import load_model
    from harness.registry import models
    from harness.store import Store

    calls = []

    class CountingAdult:
        def catalog(self):
            return []

        def check(self, arg, task):
            pass

        def load(self, arg, task, checkpoint=None, **options):
            model = load_model("zoo:adult-logreg", task)
            original = model.module.forward

            def forward(x):
                calls.append(len(x))
                return original(x)

            model.module.forward = forward
            return model

    def suite(metrics: str):
        text = "name: t\nresamples: 50\ngroups:\n  - models: ['countingadult:']\n    tasks: [adult]\n"
        text += f"    metrics: {metrics}\n"
        return parse_suite(text, "t.yaml")

    models.register("countingadult", "adult-logreg that counts its forward calls")(CountingAdult)
    try:
        with Store(tmp_path) as store:
            first = runner.run(suite("[accuracy]"), store)
            assert not first.failures and calls, first.failures
            calls.clear()
            result = runner.run(suite("[accuracy, {fairness: {features: [sex]}}]"), store)
            assert not result.failures and calls == []
            stored = {(r.metric, r.slice): r.value for r in result.records if r.metric.startswith("fairness.")}
            fresh = runner.run(suite("[{fairness: {features: [sex]}}]"), store, no_cache=True)
            assert calls  # --no-cache measures again from a new pass
            assert {(r.metric, r.slice): r.value for r in fresh.records if r.metric.startswith("fairness.")} == stored
    finally:
        models._entries.pop("countingadult")


def test_the_mitigated_adult_model_has_a_smaller_parity_gap_at_a_visible_accuracy_cost():
    import torch

    from harness.context import EvalContext
    from harness.metrics.accuracy import Accuracy
    from harness.models import load_model
    from harness.tasks import get_task

    task = get_task("adult")
    results = {}
    for name in ("adult-mlp", "adult-mlp-fair"):
        ctx = EvalContext(
            load_model(f"zoo:{name}", task), task, task.load(), torch.device("cpu"), 2048, 0, 200, "t", {}
        )
        records = Fairness().compute(ctx, FairnessParams(features=("sex",)))
        top1 = next(r for r in Accuracy().compute(ctx, Accuracy.Params()) if r.metric == "accuracy.top1")
        results[name] = (by(records, "demographic_parity_difference", "feature=sex"), top1)
    (plain_gap, plain_acc), (fair_gap, fair_acc) = results["adult-mlp"], results["adult-mlp-fair"]
    assert fair_gap.ci_high < plain_gap.ci_low  # clearly smaller, not by noise
    assert fair_acc.value < plain_acc.value  # and it costs accuracy


def test_many_groups_as_native_country_has():
    """Forty-odd groups (Adult's native countries): the count tables index past what int8 group codes
    hold, and most groups are small."""
    rng = np.random.default_rng(3)
    group = rng.choice([f"country-{i:02d}" for i in range(45)], size=2000)
    y = rng.integers(0, 2, 2000)
    yhat = rng.integers(0, 2, 2000)
    records = evaluate(y, yhat, pd.DataFrame({"g": group}))
    expected = fm.demographic_parity_difference(y, yhat, sensitive_features=group)
    assert by(records, "demographic_parity_difference", "feature=g").value == pytest.approx(expected)
    assert by(records, "count", "g=country-44").value == (group == "country-44").sum()
