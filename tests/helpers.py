"""Helpers for tests: a model that returns fixed logits, and a context around it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from harness.context import EvalContext
from harness.models.base import Model
from harness.tasks.base import Split, Task, fingerprint_arrays


class TableModule(nn.Module):
    """A 'model' that returns fixed logits: input i (a float index) -> row i of the table."""

    def __init__(self, logits: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("table", torch.as_tensor(logits, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table[x[:, 0].long()]


def make_task(labels: np.ndarray, num_classes: int, attributes: pd.DataFrame | None = None) -> Task:
    extra = pd.DataFrame(index=range(len(labels))) if attributes is None else attributes.reset_index(drop=True)

    class Fixed(Task):
        name = "fixed"
        modality = "tabular"
        classes = tuple(f"c{i}" for i in range(num_classes))
        splits = ("test",)
        input_shape = (1,)
        sensitive = tuple(extra.columns)

        def _load(self, split: str) -> Split:
            n = len(labels)
            return Split(
                "fixed", split, torch.arange(n, dtype=torch.float32)[:, None], torch.as_tensor(labels),
                pd.concat([pd.DataFrame({"index": np.arange(n)}), extra], axis=1),
                fingerprint_arrays(np.asarray(labels)),
            )  # fmt: skip

    return Fixed()


def context_for(
    logits: np.ndarray, labels: np.ndarray, resamples: int = 200, seed: int = 0, attributes: pd.DataFrame | None = None
) -> EvalContext:
    """An EvalContext whose clean pass yields exactly ``logits`` for ``labels`` (and the examples carry
    ``attributes``)."""
    task = make_task(np.asarray(labels, dtype=np.int64), logits.shape[1], attributes)
    model = Model("table", TableModule(logits), "tabular")
    return EvalContext(model, task, task.load(), torch.device("cpu"), 64, seed, resamples, "test-run", {})


def everything(split: Split) -> torch.Tensor:
    """Every input of a split as one tensor (a streamed split decodes its files): for small test data."""
    return split.take(np.arange(len(split)))
