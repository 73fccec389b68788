from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import numpy as np
import pytest


@pytest.fixture
def random_predictions():
    rng = np.random.default_rng(1)
    n, k = 2000, 10
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)).astype(np.float32)
    logits[np.arange(n), labels] += rng.normal(1.5, 1.0, n).astype(np.float32)  # a decent, imperfect classifier
    return logits, labels
