"""The shipped tasks: shapes, bounds, classes, attributes, fingerprints, and the tabular preprocessing."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from harness.models.tabular import TabularPreprocessor
from harness.registry import RegistryError, tasks
from harness.tasks import get_task
from harness.tasks.adult import read_adult
from harness.tasks.fashion_mnist import read_idx
from harness.tasks.german_credit import split_indices


def test_fashion_mnist_test_split():
    task = get_task("fashion-mnist")
    split = task.load()
    assert split.inputs.shape == (10_000, 1, 28, 28) and split.inputs.dtype == torch.float32
    assert task.bounds == (0.0, 1.0)
    assert float(split.inputs.min()) >= 0 and float(split.inputs.max()) <= 1
    assert task.classes[0] == "T-shirt/top" and task.num_classes == 10
    assert torch.bincount(split.labels).tolist() == [1000] * 10  # the test split is balanced
    assert len(task.fingerprint) == 16


def test_adult_test_split_and_attributes():
    task = get_task("adult")
    split = task.load()
    assert split.inputs.shape == (16_281, 14)
    assert task.classes == ("<=50K", ">50K")
    assert split.labels.float().mean().item() == pytest.approx(3846 / 16281, abs=1e-4)  # published base rate
    assert set(task.sensitive) <= set(split.attributes.columns)
    assert set(split.attributes["sex"]) == {"Male", "Female"}
    assert set(split.attributes["age_group"]) == {"<25", "25-44", "45-64", "65+"}
    # missing values ('?') arrive as NaN in the categorical code columns
    workclass = task.schema.columns.index("workclass")
    assert torch.isnan(split.inputs[:, workclass]).sum() == (read_adult("test")["workclass"].isna()).sum() > 0


def test_german_credit_split_is_fixed_and_disjoint():
    task = get_task("german-credit")
    parts = split_indices(1000)
    assert len(parts["train"]) == 700 and len(parts["test"]) == 300
    assert not set(parts["train"]) & set(parts["test"])
    split = task.load()
    assert split.inputs.shape == (300, 20)
    assert set(split.attributes["sex"]) == {"male", "female"}
    assert task.fingerprint == get_task("german-credit").load().fingerprint


def test_fingerprints_differ_between_tasks_and_subsets():
    fm = get_task("fashion-mnist").load()
    assert fm.subset(np.arange(10)).fingerprint != fm.subset(np.arange(1, 11)).fingerprint
    assert len({get_task(n).fingerprint for n in ("fashion-mnist", "adult", "german-credit")}) == 3


def test_subset_keeps_original_index():
    split = get_task("adult").load()
    sub = split.subset(np.array([5, 17, 400]))
    assert sub.attributes["index"].tolist() == [5, 17, 400]
    assert torch.equal(sub.labels, split.labels[[5, 17, 400]])


def test_unknown_task_suggests_close_names():
    with pytest.raises(RegistryError, match="Did you mean 'fashion-mnist'"):
        tasks.get("fashion-mnst")


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"\x00\x00\x09\x01" + b"\x00" * 8))
    with pytest.raises(ValueError, match="magic"):
        read_idx(bad)
    short = tmp_path / "short.gz"
    short.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + (100).to_bytes(4, "big") + b"\x00" * 5))
    with pytest.raises(ValueError, match="truncated"):
        read_idx(short)


def test_tabular_preprocessor_fills_scales_and_encodes():
    task = get_task("adult")
    train = task.load("train")
    pre = TabularPreprocessor(task.schema).fit(train.inputs)
    encoded = pre(train.inputs)
    assert encoded.shape == (len(train), pre.out_features)
    assert torch.isfinite(encoded).all()
    numeric = encoded[:, : pre.n_numeric]
    assert numeric.mean(0).abs().max() < 1e-3 and (numeric.std(0) - 1).abs().max() < 1e-3
    onehot = encoded[:, pre.n_numeric :]
    assert torch.equal(onehot.sum(1), torch.full((len(train),), float(len(pre.sizes))))
    # a missing category is filled with the training mode
    row = train.inputs[:1].clone()
    j = task.schema.columns.index("workclass")
    row[0, j] = float("nan")
    filled = row.clone()
    filled[0, j] = pre.mode[j - pre.n_numeric]
    assert torch.equal(pre(row), pre(filled))
