"""The corruption metric: CE and mCE against their definitions, the zoo's ordering, corrupted data that
does not depend on the batch size or the subset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.context import EvalContext
from harness.metrics import corruption
from harness.metrics.corruption import Corruption, CorruptionParams
from harness.models import load_model
from harness.tasks import get_task

PARAMS = CorruptionParams(
    corruptions=("gaussian_noise", "shot_noise", "defocus_blur", "contrast", "pixelate"), severities=(2, 4)
)


def evaluate(name: str, n: int = 400, batch_size: int = 500, rows: np.ndarray | None = None):
    task = get_task("fashion-mnist")
    split = task.load().subset(np.arange(n) if rows is None else rows)
    ctx = EvalContext(load_model(f"zoo:{name}", task), task, split, torch.device("cpu"), batch_size, 0, 200, "t", {})
    metric = Corruption()  # compute takes parameters resolved as the runner resolves them (the task's baseline)
    return metric.compute(ctx, metric.resolve(PARAMS, task, n=n, cut=True)), ctx


@pytest.fixture(scope="module")
def results():
    return {name: evaluate(name) for name in ("fmnist-linear", "fmnist-cnn", "fmnist-cnn-aug")}


def by(records, metric, slice_="overall"):
    return next(r for r in records if r.metric == metric and r.slice == slice_)


def test_baseline_has_mce_one_and_ce_follows_its_definition(results):
    base, _ = results["fmnist-linear"]
    assert by(base, "corruption.mce").value == pytest.approx(1.0)
    model, _ = results["fmnist-cnn"]
    ces = []
    for name in PARAMS.corruptions:
        m = sum(1 - by(model, "corruption.accuracy", f"corruption={name}@{s}").value for s in PARAMS.severities)
        b = sum(1 - by(base, "corruption.accuracy", f"corruption={name}@{s}").value for s in PARAMS.severities)
        ces.append(m / b)
        assert by(model, "corruption.ce", f"corruption={name}").value == pytest.approx(m / b)
    assert by(model, "corruption.mce").value == pytest.approx(np.mean(ces))
    accuracies = [r.value for r in model if r.metric == "corruption.accuracy"]
    assert by(model, "corruption.mean_accuracy").value == pytest.approx(np.mean(accuracies))


def test_relative_mce_follows_its_definition(results):
    base, base_ctx = results["fmnist-linear"]
    model, ctx = results["fmnist-cnn"]
    clean_m, clean_b = 1 - ctx.clean.correct.mean(), 1 - base_ctx.clean.correct.mean()
    rel = []
    for name in PARAMS.corruptions:
        m = sum(
            1 - by(model, "corruption.accuracy", f"corruption={name}@{s}").value - clean_m for s in PARAMS.severities
        )
        b = sum(
            1 - by(base, "corruption.accuracy", f"corruption={name}@{s}").value - clean_b for s in PARAMS.severities
        )
        rel.append(m / b)
    assert by(model, "corruption.relative_mce").value == pytest.approx(np.mean(rel))


def test_augmented_cnn_has_lower_mce_than_the_plain_cnn(results):
    plain, aug = by(results["fmnist-cnn"][0], "corruption.mce"), by(results["fmnist-cnn-aug"][0], "corruption.mce")
    assert aug.value < plain.value
    assert aug.ci_high < plain.ci_low  # clearly, not by noise


def test_each_example_is_corrupted_alike_at_any_batch_size_and_in_any_subset(monkeypatch):
    """Per example, the outcome under every corruption is the same whether 150 examples go in batches
    of 7 or all in one, or a subset of them is evaluated (without the batch cache, which would serve
    the first run's batches)."""
    monkeypatch.setenv("HARNESS_CORRUPTION_CACHE_MB", "0")
    monkeypatch.setattr(corruption, "_BATCHES", corruption.BatchCache())
    monkeypatch.setattr(corruption, "_BASELINE", {})
    (_, small), (_, large) = evaluate("fmnist-cnn", 150, batch_size=7), evaluate("fmnist-cnn", 150, batch_size=256)
    rows = np.arange(150)[::3]
    (_, part) = evaluate("fmnist-cnn", rows=rows, batch_size=20)
    a, b, c = (ctx.outputs["corruption"].set_index("example") for ctx in (small, large, part))
    assert a.equals(b) and a.loc[c.index].equals(c)
    assert len(corruption._BATCHES.items) == 0


def test_corrupted_batches_are_shared_within_a_process_and_bounded(monkeypatch):
    monkeypatch.setattr(corruption, "_BATCHES", corruption.BatchCache())
    monkeypatch.setenv("HARNESS_CORRUPTION_CACHE_MB", "0.01")  # 10,485 bytes: 13 images of 28 x 28
    images, indices = torch.rand(10, 1, 28, 28), np.arange(10)
    first = corruption.corrupted(images, indices, "shot_noise", 2, 0, "task")
    assert len(corruption._BATCHES.items) == 1
    assert torch.equal(corruption.corrupted(images, indices, "shot_noise", 2, 0, "task"), first)
    corruption.corrupted(images, indices, "shot_noise", 3, 0, "task")  # over the bound: the oldest goes
    assert len(corruption._BATCHES.items) == 1 and corruption._BATCHES.bytes <= corruption._BATCHES.limit


def test_unknown_corruption_and_tabular_task():
    with pytest.raises(ValueError, match="unknown corruption 'fogg'"):
        CorruptionParams(corruptions=("fogg",))
    task = get_task("adult")
    assert "tabular" not in Corruption.modalities  # a suite naming it with a table skips the pair, with the reason
    with pytest.raises(ValueError, match="perturb image inputs; adult is tabular"):
        Corruption().check(task, PARAMS)
    with pytest.raises(ValueError, match="typo perturb text inputs; fashion-mnist is image"):
        Corruption().check(get_task("fashion-mnist"), CorruptionParams(corruptions=("typo",)))


def test_figure_shows_every_corruption_at_the_highest_severity(results):
    import io

    from PIL import Image

    _, ctx = results["fmnist-cnn"]
    assert list(ctx.figures) == ["corruptions@4"]
    image = Image.open(io.BytesIO(ctx.figures["corruptions@4"]))
    assert image.format == "PNG" and min(image.size) > 300
    _, other = results["fmnist-cnn-aug"]
    assert other.figures["corruptions@4"] == ctx.figures["corruptions@4"]  # the same data for every model


def test_per_example_outcomes_match_the_records(results):
    records, ctx = results["fmnist-cnn"]
    frame = ctx.outputs["corruption"]
    assert len(frame) == 400 and frame["example"].tolist() == list(range(400))
    assert frame["clean"].tolist() == ctx.clean.correct.tolist()
    for name in PARAMS.corruptions:
        for s in PARAMS.severities:
            assert frame[f"{name}@{s}"].mean() == pytest.approx(
                by(records, "corruption.accuracy", f"corruption={name}@{s}").value
            )
