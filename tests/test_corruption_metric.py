"""The corruption metric: CE and mCE against their definitions, the zoo's ordering, the shared cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.context import EvalContext
from harness.metrics.corruption import Corruption, CorruptionParams, cache_dir
from harness.models import load_model
from harness.tasks import get_task

PARAMS = CorruptionParams(
    corruptions=("gaussian_noise", "shot_noise", "defocus_blur", "contrast", "pixelate"), severities=(2, 4)
)


def evaluate(name: str, n: int = 400):
    task = get_task("fashion-mnist")
    split = task.load().subset(np.arange(n))
    ctx = EvalContext(load_model(f"zoo:{name}", task), task, split, torch.device("cpu"), 500, 0, 200, "t", {})
    metric = Corruption()  # compute takes parameters resolved as the runner resolves them (the task's baseline)
    return metric.compute(ctx, metric.resolve(PARAMS, task, n=n, cut=True)), ctx


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("HARNESS_CACHE", str(tmp_path_factory.mktemp("cache")))
    out = {name: evaluate(name) for name in ("fmnist-linear", "fmnist-cnn", "fmnist-cnn-aug")}
    yield out
    mp.undo()


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


def test_corrupted_data_is_made_once_and_shared(results):
    files = sorted(cache_dir().rglob("*.safetensors"))
    assert len(files) == len(PARAMS.corruptions) * len(PARAMS.severities)  # three models, one set of files
    mtimes = [f.stat().st_mtime_ns for f in files]
    evaluate("fmnist-mlp")
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    files[0].write_bytes(b"damaged")
    evaluate("fmnist-mlp")  # a damaged file is made again
    assert files[0].stat().st_size > 100


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
