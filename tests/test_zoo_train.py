"""The zoo's recipes: seeded and reproducible, usable from the command line, clear when data is missing."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from harness.models import load_model
from harness.models.zoo.train import reweighing, train
from harness.tasks import DataNotFoundError, fashion_mnist, get_task


def test_tabular_recipe_is_reproducible_and_loads_as_a_checkpoint(tmp_path):
    a = train("adult-logreg", tmp_path / "a", epochs=2, limit=4000)
    b = train("adult-logreg", tmp_path / "b", epochs=2, limit=4000)
    wa, wb = load_file(a.path), load_file(b.path)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a.test_accuracy > 0.8
    model = load_model("zoo:adult-logreg", get_task("adult"), checkpoint=str(a.path))
    assert model.info["training_data"] == "adult train split (4000 examples)"


def test_fashion_mnist_recipe_runs_when_the_train_split_is_found(tmp_path):
    try:
        fashion_mnist.locate("train")
    except DataNotFoundError:
        pytest.skip("no Fashion-MNIST train split on this machine")
    result = train("fmnist-cnn-adv", tmp_path, epochs=1, limit=512)
    assert result.path.is_file() and 0.1 < result.test_accuracy <= 1
    assert "pgd20_accuracy_first1000" in result.extra


def test_missing_train_split_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setattr(fashion_mnist, "candidate_dirs", lambda: [tmp_path])
    with pytest.raises(DataNotFoundError, match="apt-get install dataset-fashion-mnist") as info:
        fashion_mnist.locate("train")
    assert str(tmp_path) in str(info.value) and "HARNESS_DATA" in str(info.value)


def test_reweighing_makes_label_independent_of_group():
    rng = np.random.default_rng(0)
    groups = rng.choice(["a", "b"], 5000, p=[0.7, 0.3])
    labels = (rng.random(5000) < np.where(groups == "a", 0.4, 0.1)).astype(int)
    w = reweighing(labels, groups)
    rate = {g: np.average(labels[groups == g], weights=w[groups == g]) for g in ("a", "b")}
    assert rate["a"] == pytest.approx(rate["b"]) == pytest.approx(labels.mean())
    assert w.sum() == pytest.approx(len(w))


def test_zoo_train_command(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "zoo", "train", "german-logreg", "--epochs", "3", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "german-logreg.safetensors").is_file() and "german-logreg" in proc.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "harness", "zoo", "train", "fmnist-cn"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "Did you mean 'fmnist-cnn'" in bad.stderr
