"""Bad input tried on purpose (hypothesis): random and malformed suite YAML, random CSV tables, and
random data for the statistics. Every failure must be one of harness's own errors (a clear message for
the user), never a traceback from inside a library; every success must make sense."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import stats
from harness.config import ConfigError, parse_suite
from harness.errors import HarnessError
from harness.leaderboard.compare import holm, mcnemar_exact, paired_bootstrap_p
from harness.tasks import get_task

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NAMES = ["quick", "accuracy", "zoo:fmnist-cnn", "adult", "fashion-mnist", "calibration", "timm:resnet18"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True), st.text(max_size=12),
    st.sampled_from(NAMES),
)  # fmt: skip
KEYS = st.sampled_from([
    "name", "groups", "models", "tasks", "metrics", "seed", "limit", "batch_size", "resamples", "device",
    "country", "leaderboard", "executor", "retries", "options", "bins", "colour",
])  # fmt: skip
documents = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=20,
)  # fmt: skip


@FAST
@given(st.text(max_size=300))
def test_any_text_is_a_suite_or_a_config_error(text):
    try:
        parse_suite(text, "s.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("s.yaml")
    except RecursionError:  # pragma: no cover - would mean an unbounded structure got through
        pytest.fail("recursion")


@FAST
@given(documents)
def test_any_yaml_structure_is_a_suite_or_a_config_error(document):
    text = yaml.safe_dump(document)
    try:
        suite = parse_suite(text, "s.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("s.yaml")
    else:
        assert suite.groups and all(g.models and g.tasks and g.metrics for g in suite.groups)


@FAST
@given(
    st.fixed_dictionaries({
        "name": st.text(min_size=1, max_size=8),
        "groups": st.lists(st.fixed_dictionaries({
            "models": st.lists(st.sampled_from(["zoo:fmnist-cnn", "zoo:adult-mlp", "zoo:nope", "timm:resnet18",
                                                "nosuch:model", "hf:./missing", 3]), max_size=3),
            "tasks": st.lists(st.sampled_from(["fashion-mnist", "adult", "fashion-mnst", "csv", "csv:x.csv",
                                               "imagefolder", {"name": "adult", "options": {"x": 1}}]), max_size=3),
            "metrics": st.lists(st.sampled_from(["accuracy", "acuracy", {"calibration": {"bins": 15}},
                                                 {"calibration": {"bins": -1}}, {"fairness": {"min_count": "x"}},
                                                 {"corruption": {"corruptions": ["fogg"]}}]), max_size=3),
        }), max_size=2),
        "seed": st.one_of(st.integers(-3, 3), st.text(max_size=3)),
    })
)  # fmt: skip
def test_plausible_suites_with_mistakes_name_file_and_field(document):
    try:
        parse_suite(yaml.safe_dump(document), "mine.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("mine.yaml") and ": " in str(exc)


columns = st.sampled_from(["age", "income", "city", "y", "label", "sex", "x y", "é"])
cells = st.one_of(st.none(), st.integers(-100, 100), st.floats(allow_nan=True, allow_infinity=True, width=32),
                  st.text(max_size=6), st.sampled_from(["yes", "no", "F", "M"]))  # fmt: skip


@FAST
@given(
    st.lists(columns, min_size=0, max_size=5, unique=True),
    st.integers(0, 12),
    st.data(),
)
def test_random_tables_load_as_csv_tasks_or_fail_with_a_task_error(names, n_rows, data):
    rows = [[data.draw(cells) for _ in names] for _ in range(n_rows)]
    label = data.draw(st.one_of(st.sampled_from(names) if names else st.just("y"), st.just("missing")))
    options = data.draw(st.fixed_dictionaries({}, optional={
        "sensitive": st.lists(st.sampled_from(names or ["sex"]), max_size=2, unique=True),
        "categorical": st.lists(st.sampled_from(names or ["city"]), max_size=2, unique=True),
        "test_fraction": st.floats(0.1, 0.9),
    }))  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{uuid.uuid4().hex}.csv"
        pd.DataFrame(rows, columns=names).to_csv(path, index=False) if names else path.write_text("")
        try:
            task = get_task(f"csv:{path}", label=label, **options)
            split = task.load()
            assert len(split) <= n_rows and split.inputs.shape[1] == len(task.schema.columns)
            assert set(np.unique(split.labels.numpy())) <= set(range(task.num_classes))
            if "train" in task.splits:
                task.load("train")
        except HarnessError as exc:
            assert str(exc)


@FAST
@given(st.lists(st.booleans(), max_size=200), st.integers(1, 300), st.integers(0, 2**31))
def test_proportion_intervals_hold_their_estimate_or_refuse_no_data(outcomes, resamples, seed):
    try:
        estimate = stats.proportion(np.array(outcomes, dtype=bool), resamples=resamples, seed=seed)
    except ValueError as exc:
        assert not outcomes and "zero examples" in str(exc)
        return
    assert 0 <= estimate.ci_low <= estimate.ci_high <= 1 and estimate.n == len(outcomes)
    assert estimate.value == pytest.approx(np.mean(outcomes))


@FAST
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=100), st.integers(10, 200))
def test_bootstrap_mean_intervals_lie_within_the_data(values, resamples):
    estimate = stats.mean(np.array(values), resamples=resamples)
    assert min(values) - 1e-6 <= estimate.ci_low <= estimate.ci_high <= max(values) + 1e-6
    assert estimate.value == pytest.approx(np.mean(values), rel=1e-9, abs=1e-9)


@FAST
@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=300))
def test_mcnemar_is_a_symmetric_probability(pairs):
    a = np.array([p[0] for p in pairs], dtype=bool)
    b = np.array([p[1] for p in pairs], dtype=bool)
    p = mcnemar_exact(a, b)
    assert 0 <= p <= 1 and p == pytest.approx(mcnemar_exact(b, a))


@FAST
@given(st.lists(st.one_of(st.floats(-10, 10), st.just(float("nan"))), max_size=100), st.integers(10, 200))
def test_paired_bootstrap_p_is_a_probability_or_refuses_no_pairs(differences, resamples):
    d = np.array(differences, dtype=float)
    try:
        p = paired_bootstrap_p(d, resamples=resamples, seed=0)
    except ValueError as exc:
        assert not np.isfinite(d).any() and "no paired examples" in str(exc)
        return
    assert 0 <= p <= 1


@FAST
@given(st.lists(st.floats(0, 1), max_size=50))
def test_holm_keeps_order_never_lowers_and_caps_at_one(p):
    adjusted = holm(p)
    assert all(a >= raw - 1e-12 and a <= 1 for a, raw in zip(adjusted, p, strict=True))
    order = np.argsort(p, kind="stable")
    assert all(adjusted[order[i]] <= adjusted[order[i + 1]] + 1e-12 for i in range(len(p) - 1))
