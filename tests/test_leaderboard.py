"""Leaderboards: rows, ranks, headline matching, devices kept apart, every format escaped."""

from __future__ import annotations

import json

import pytest

from harness.config import Headline, parse_suite
from harness.leaderboard import render
from harness.leaderboard.table import build
from harness.records import Record

CATEGORY = {"tabular_shift": "robustness"}
CPU, GPU = "cpu: Test CPU (2 threads of 2 cores)", "cuda:0: Test GPU"


def record(model, metric, value, *, task="fashion-mnist", slice="overall", direction="higher", device=CPU,
           flags=(), category=None) -> Record:  # fmt: skip
    family = metric.split(".")[0]
    return Record(model=model, task=task, metric=metric, slice=slice, value=value, ci_low=value - 0.01,
                  ci_high=value + 0.01, n=100, direction=direction, category=category or CATEGORY.get(family, family),
                  params={}, flags=tuple(flags), run_id="r1", provenance={"device": device})  # fmt: skip


HEADLINES = [
    Headline(metric="accuracy.top1", label="accuracy"),
    Headline(metric="calibration.ece", label="ECE"),
    Headline(metric="tabular_shift.worst_accuracy", slice="shift=*", label="worst shift"),
    Headline(metric="efficiency.best_throughput", slice="precision=fp32", label="samples/s"),
]


def test_rows_rank_by_the_first_headline_in_its_direction_and_match_slice_globs():
    records = [
        record("a", "accuracy.top1", 0.80), record("b", "accuracy.top1", 0.90), record("c", "accuracy.top1", 0.90),
        record("a", "calibration.ece", 0.05, direction="lower"),
        record("b", "calibration.ece", 0.02, direction="lower"),
        record("a", "tabular_shift.worst_accuracy", 0.7, slice="shift=age"),
        record("b", "tabular_shift.worst_accuracy", 0.6, slice="shift=hours"),
        record("a", "accuracy.per_class", 0.1, slice="class=Bag"),  # not a headline
    ]  # fmt: skip
    board = build(records, HEADLINES)
    frame = board.frame
    assert list(frame["model"]) == ["b", "c", "a"] and list(frame["rank"]) == [1, 1, 3]
    assert [c.headline.label for c in board.columns] == ["accuracy", "ECE", "worst shift"]  # no efficiency record
    assert frame.set_index("model").loc["a", "worst shift"] == 0.7
    by_ece = build(records, HEADLINES, sort="ECE").frame
    assert list(by_ece["model"][:2]) == ["b", "a"]  # lower is better; c has no ECE and comes last
    with pytest.raises(ValueError, match="cannot sort by 'speed'"):
        build(records, HEADLINES, sort="speed")


def test_device_dependent_figures_put_a_model_on_one_row_per_device():
    records = [
        record("a", "accuracy.top1", 0.9),
        record("a", "efficiency.best_throughput", 1000, slice="precision=fp32", device=CPU),
        record("a", "efficiency.best_throughput", 50000, slice="precision=fp32", device=GPU),
        record("b", "accuracy.top1", 0.8),
    ]
    frame = build(records, HEADLINES).frame.set_index(["model", "device"])
    assert frame.loc[("a", CPU), "samples/s"] == 1000 and frame.loc[("a", GPU), "samples/s"] == 50000
    accuracy_only = build(records, HEADLINES[:1]).frame  # device figures not shown: one row per model
    assert list(accuracy_only["device"]) == ["any", "any"]
    assert frame.loc[("a", CPU), "accuracy"] == frame.loc[("a", GPU), "accuracy"] == 0.9
    assert ("b", "any") in frame.index


def test_every_format_shows_figures_and_escapes_what_comes_from_the_store():
    evil = "<img src=x onerror=alert(1)>|"
    records = [record(evil, "accuracy.top1", 0.9, flags=("energy-estimated",)), record("b", "accuracy.top1", 0.8)]
    board = build(records, HEADLINES)
    md = render.markdown(board, "t")
    assert "&lt;img src=x onerror=alert(1)&gt;\\|" in md and "<img" not in md
    assert "| 1 | &lt;img" in md and "90.0 ±1.0" in md and "energy-estimated" in md
    data = json.loads(render.as_json(board))
    first = data["rows"][0]
    assert first["model"] == evil and first["figures"]["accuracy"]["value"] == 0.9
    assert first["figures"]["accuracy"]["ci_low"] == pytest.approx(0.89) and first["flags"] == ["energy-estimated"]
    assert "accuracy low" in render.csv(board).splitlines()[0]


def test_suites_declare_their_headlines_in_yaml():
    suite = parse_suite(
        "name: s\ngroups:\n  - models: [zoo:fmnist-cnn]\n    tasks: [fashion-mnist]\n    metrics: [accuracy]\n"
        "leaderboard:\n  - {metric: accuracy.top1, label: acc}\n  - {metric: fairness.worst_group_accuracy, "
        "slice: 'feature=sex'}\n",
        "s.yaml",
    )
    assert [(h.metric, h.slice, h.label) for h in suite.leaderboard] == [
        ("accuracy.top1", "overall", "acc"),
        ("fairness.worst_group_accuracy", "feature=sex", "fairness.worst_group_accuracy feature=sex"),
    ]


def test_models_not_significantly_different_from_the_leader_are_marked(tmp_path):
    """Accuracy: McNemar on the stored per-example outcomes (Holm over the models); ECE, which has no
    per-example outcome: overlapping intervals."""
    import numpy as np
    import pandas as pd

    from harness.leaderboard import leaderboard
    from harness.store import JobRow, Store

    rng = np.random.default_rng(0)
    a = rng.random(2000) < 0.9
    b = a.copy()
    b[rng.choice(np.flatnonzero(a), 20, replace=False)] = False  # 20 discordant pairs each way: a tie
    b[rng.choice(np.flatnonzero(~a), 18, replace=False)] = True
    correct = {"a": a, "b": b, "c": rng.random(2000) < 0.6}
    with Store(tmp_path) as store:
        for model, outcome in correct.items():
            ece = {"a": (0.02, 0.01, 0.03), "b": (0.025, 0.015, 0.035), "c": (0.10, 0.08, 0.12)}[model]
            acc = outcome.mean()
            records = [
                Record(model, "fashion-mnist", "accuracy.top1", acc, acc - 0.01, acc + 0.01, 2000, "higher",
                       "accuracy", run_id="r1"),
                Record(model, "fashion-mnist", "calibration.ece", *ece, 2000, "lower", "calibration", run_id="r1"),
            ]  # fmt: skip
            store.save_job(JobRow(f"k-{model}", "r1", model, "fashion-mnist", "accuracy", {}, "m", "t"), records, 1.0)
            frame = pd.DataFrame({"example": np.arange(2000), "correct": outcome})
            store.save_examples(f"e-{model}", frame, model=model, task="fashion-mnist", kind="clean",
                                fingerprints=("m", "t"), run_id="r1")  # fmt: skip
        board = leaderboard(store)
    frame = board.frame.set_index("model")
    assert frame.loc["b", "accuracy tie"] and frame.loc["b", "accuracy tie by"] == "paired test, Holm-adjusted"
    assert not frame.loc["c", "accuracy tie"]
    assert frame.loc["b", "ECE tie"] and frame.loc["b", "ECE tie by"] == "overlapping 95% CIs"
    assert not frame.loc["c", "ECE tie"]
    assert pd.isna(frame.loc["a", "accuracy tie"])  # the leader
    assert "≈" in render.markdown(board, "t").split("| b |")[1].split("\n")[0]


def test_pareto_front_keeps_the_points_no_other_beats_on_both_axes():
    from harness.leaderboard.plots import pareto_front

    points = {"cheap": (1.0, 0.90), "accurate": (2.0, 0.95), "dominated": (3.0, 0.80), "middle": (1.5, 0.92)}
    assert sorted(pareto_front(points, x_higher=False, y_higher=True)) == ["accurate", "cheap", "middle"]
    assert pareto_front(points, x_higher=True, y_higher=True) == ["accurate", "dominated"]  # x=3 is best there


def test_a_suites_board_shows_the_jobs_of_its_own_parameters(tmp_path):
    """Another suite's run of the same metric with other parameters, newer and as complete, does not
    displace the suite's own evaluation on the suite's board (the compression suite's short efficiency
    runs beside the efficiency suite's)."""
    import json

    from test_cli import harness

    from harness.store import Store

    store = tmp_path / "store"
    harness("run", "--suite", "quick", "--model", "zoo:german-logreg", "--quiet", store=store)
    other = tmp_path / "other.yaml"
    other.write_text("name: other\ngroups:\n  - tasks: [german-credit]\n    models: [zoo:german-logreg]\n"
                     "    metrics: [{calibration: {bins: 5}}]\n")  # fmt: skip
    harness("run", "--config", str(other), "--quiet", store=store)
    with Store(store) as results:
        ece = {r.params["bins"]: r.value for r in results.records() if r.metric == "calibration.ece"}
    assert set(ece) == {5, 15} and ece[5] != ece[15]
    board = json.loads(harness("leaderboard", "--suite", "quick", "--format", "json", store=store).stdout)
    (row,) = board["rows"]
    assert row["figures"]["ECE"]["value"] == ece[15]


def test_the_robustness_and_fairness_plots_read_as_they_should(tmp_path, monkeypatch):
    """Groups in their natural order; the epsilon curve starts at the clean accuracy (epsilon 0); a
    figure that is the same for every model (the corrupted data) is shown once."""
    from harness.leaderboard import html, plots

    assert sorted(["45-64", "65+", "<25", "25-44", "Female"], key=plots.group_order) == [
        "<25", "25-44", "45-64", "65+", "Female"]  # fmt: skip
    assert sorted([">=2", "[0.5, 2)", "<0.5"], key=plots.group_order) == ["<0.5", "[0.5, 2)", ">=2"]
    robust = {"category": "robustness"}
    records = [record("zoo:a", "adversarial.robust_accuracy", 0.4, slice="attack=worst-linf@0.1", **robust),
               record("zoo:a", "adversarial.clean_accuracy", 0.9, slice="attack=none", **robust)]  # fmt: skip
    drawn = []
    monkeypatch.setattr(plots, "_lines", lambda curves, *a: drawn.append(curves) or b"png")
    plots.robust_curves(records, "fashion-mnist")
    assert sorted(drawn[0]["zoo:a"]) == [0.0, 0.1] and drawn[0]["zoo:a"][0.0][0] == pytest.approx(90)
    picture = tmp_path / "grid.png"
    picture.write_bytes(b"\x89PNG same bytes")
    figures = [{"model": m, "task": "fashion-mnist", "name": "corruptions@5", "path": str(picture)}
               for m in ("zoo:a", "zoo:b")]  # fmt: skip
    shown = "".join(html._stored_figures(figures, {"zoo:a", "zoo:b"}, {"robustness"}))
    assert shown.count("<figure") == 1 and "the same for every model" in shown
