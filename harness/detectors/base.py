"""The ``Detector`` interface and the outputs it scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

from harness.errors import HarnessError
from harness.registry import detectors

if TYPE_CHECKING:
    import torch
    from torch import nn


class DetectorError(HarnessError, ValueError):
    """A detector that cannot run on this model or task (no features, no training split)."""


@dataclass
class Outputs:
    """What one pass of a model over a split leaves for the detectors: logits [n, k], penultimate
    features [n, d] where a detector reads them, and the per-example scores of input detectors, by name."""

    logits: np.ndarray
    features: np.ndarray | None = None
    scored: dict[str, np.ndarray] = field(default_factory=dict)


class Detector:
    """One way to score how in-distribution an input looks (higher: more in-distribution).

    ``reads``: ``logits`` (post-hoc), ``features`` (the penultimate layer's, fitted on the training
    split when ``fitted``), or ``inputs`` (runs the model itself on each batch, ``score_batch``)."""

    name: ClassVar[str]
    reads: ClassVar[Literal["logits", "features", "inputs"]] = "logits"
    fitted: ClassVar[bool] = False
    citation: ClassVar[str] = ""

    def fit(self, features: np.ndarray, labels: np.ndarray) -> None:
        """Fit on the training split's penultimate features and labels."""

    def score(self, outputs: Outputs) -> np.ndarray:
        """One score per example of a pass (higher: more in-distribution)."""
        if self.reads == "inputs":
            return outputs.scored[self.name]
        raise NotImplementedError

    def score_batch(self, module: nn.Module, batch: torch.Tensor, gradients: nn.Module | None = None) -> torch.Tensor:
        """The scores of one batch of inputs, for detectors that run the model themselves (``gradients``:
        a module to differentiate in its place, where it has no gradients of its own)."""
        raise NotImplementedError

    def settings(self) -> dict[str, object]:
        """What changes its scores (it joins the job spec through the metric's parameters)."""
        return {}


def get_detector(name: str) -> Detector:
    """A fresh detector by its registered name."""
    return detectors.get(name)()
