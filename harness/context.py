"""``EvalContext``: what every metric of one (model, task) pair shares, computed once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import torch

from harness import slices
from harness.measures import measure
from harness.models.base import Model
from harness.records import Direction, Record
from harness.stats import Estimate
from harness.tasks.base import Split, Task


class ModelRunError(RuntimeError):
    """The evaluated model raised or returned something other than logits; names model, task and batch."""


@dataclass(frozen=True)
class Predictions:
    """The clean pass over the evaluation data, as numpy arrays on the host."""

    logits: np.ndarray  # [n, k] float32, as the model returned them
    labels: np.ndarray  # [n] int64

    @cached_property
    def finite(self) -> np.ndarray:
        """Rows whose logits are all finite; the others count as wrong and flag their records."""
        return np.isfinite(self.logits).all(1)

    @cached_property
    def log_probs(self) -> np.ndarray:
        logits = np.where(self.finite[:, None], self.logits, 0).astype(np.float64)
        shifted = logits - logits.max(1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(1, keepdims=True))

    @cached_property
    def probs(self) -> np.ndarray:
        return np.exp(self.log_probs)

    @cached_property
    def preds(self) -> np.ndarray:
        """Top-1 class, or -1 where the logits are not finite."""
        return np.where(self.finite, self.logits.argmax(1), -1)

    @cached_property
    def correct(self) -> np.ndarray:
        return self.preds == self.labels

    @cached_property
    def confidence(self) -> np.ndarray:
        return np.where(self.finite, self.probs.max(1), np.nan)

    def correct_top(self, k: int) -> np.ndarray:
        top = np.argpartition(-np.nan_to_num(self.logits, nan=-np.inf), k - 1, axis=1)[:, :k]
        return (top == self.labels[:, None]).any(1) & self.finite

    @property
    def nonfinite(self) -> int:
        return int((~self.finite).sum())


@dataclass
class EvalContext:
    model: Model
    task: Task
    split: Split  # the evaluated examples (the whole evaluation split, or a seeded subset)
    device: torch.device
    batch_size: int
    seed: int
    resamples: int
    run_id: str
    provenance: dict[str, Any]
    country: str = "USA"  # ISO 3166-1 alpha-3: the grid whose carbon intensity converts energy to carbon
    on_batch: Callable[[int, int], None] | None = None  # (examples done, total) during the clean pass
    on_stage: Callable[[str, int, int], None] | None = None  # (stage, stages done, total) within a metric
    metric_params: dict[str, Any] = field(default_factory=dict)  # set by the runner for each metric
    outputs: dict[str, pd.DataFrame] = field(default_factory=dict)  # per-example outputs a metric adds, by kind
    figures: dict[str, bytes] = field(default_factory=dict)  # PNG figures a metric draws, by name
    workers: int = 0  # processes that decode a streamed split's files (0: this process)
    stored: pd.DataFrame | None = None  # per-example clean outputs of an earlier run with the same fingerprints

    def __post_init__(self) -> None:
        """A model with a data config of its own (a published timm model) reads image files decoded
        for it (resize, crop, interpolation in the workers), not the task's decoding resized again."""
        if self.model.decoding is not None:
            self.split = self.split.redecoded(self.model.decoding) or self.split

    def logits(self, inputs: torch.Tensor | np.ndarray) -> np.ndarray:
        """The model's logits for any inputs in the task's raw space, in batches on the device."""
        self.model.to(self.device)
        inputs = torch.as_tensor(inputs)
        pin = self.device.type == "cuda"
        parts = []
        for start in range(0, len(inputs), self.batch_size):
            batch = inputs[start : start + self.batch_size]
            parts.append(self._batch_logits(batch.pin_memory() if pin else batch, start))
        return torch.cat(parts).cpu().numpy() if parts else np.zeros((0, self.task.num_classes), np.float32)

    def _batch_logits(self, batch: torch.Tensor, start: int) -> torch.Tensor:
        """One batch's logits, checked; an error names the model, the task and the batch."""
        number = start // self.batch_size
        try:
            out = self.model.logits(batch)
        except Exception as exc:  # name the model, the task and the batch: the user's model raised
            raise ModelRunError(
                f"{self.model.name} raised on {self.task.name}, batch {number} (examples "
                f"{start}-{start + len(batch) - 1}): {type(exc).__name__}: {exc}"
            ) from exc
        expected = (len(batch), self.task.num_classes)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ModelRunError(
                f"{self.model.name} returned {shape} on {self.task.name}, batch {number}; "
                f"expected logits of shape {expected}"
            )
        return out.float()

    def stage(self, label: str, done: int, total: int) -> None:
        """Report progress inside a long metric: ``label`` is what runs now, ``done`` of ``total``."""
        if self.on_stage:
            self.on_stage(label, done, total)

    def predict(self, inputs: torch.Tensor | np.ndarray) -> np.ndarray:
        """Top-1 predictions for shifted or perturbed inputs; -1 where the logits are not finite."""
        logits = self.logits(inputs)
        return np.where(np.isfinite(logits).all(1), logits.argmax(1), -1)

    @cached_property
    def clean(self) -> Predictions:
        """One pass of the model over the data; every metric that needs clean outputs shares it."""
        self.model.to(self.device)
        parts, done = [], 0
        for batch, _ in self.split.batches(self.batch_size, workers=self.workers, device=self.device):
            parts.append(self._batch_logits(batch, done).cpu())
            done += len(batch)
            if self.on_batch:
                self.on_batch(done, len(self.split))
        logits = torch.cat(parts).numpy() if parts else np.zeros((0, self.task.num_classes), np.float32)
        return Predictions(logits, self.split.labels.numpy())

    def predictions(self) -> tuple[np.ndarray, np.ndarray]:
        """Labels and top-1 predictions of the clean pass: from this run's pass if it happened, else from
        the store when an earlier run with the same fingerprints left them (the model does not run
        again), else from a new pass."""
        if "clean" not in self.__dict__ and self.stored is not None:
            frame = self.stored
            same = len(frame) == len(self.split) and np.array_equal(
                frame["example"].to_numpy(), self.split.attributes["index"].to_numpy()
            ) and np.array_equal(frame["label"].to_numpy(), self.split.labels.numpy())  # fmt: skip
            if same:
                return frame["label"].to_numpy(), frame["prediction"].to_numpy()
        return self.clean.labels, self.clean.preds

    @property
    def bootstrap_options(self) -> dict[str, Any]:
        return {"resamples": self.resamples, "seed": self.seed}

    def record(
        self,
        metric: str,
        estimate: Estimate,
        direction: Direction | None = None,
        category: str | None = None,
        *,
        slice: str | Mapping[str, object] = "overall",
        params: dict[str, Any] | None = None,
        flags: tuple[str, ...] = (),
    ) -> Record:
        """A record of ``metric`` (a declared ``Measure``: its direction and category come from the
        declaration; a plugin's undeclared figure gives them here). ``slice``: key=value pairs, or their
        canonical text."""
        declared = measure(metric)
        if declared is not None:
            if (direction or declared.direction, category or declared.category) != (declared.direction,
                                                                                    declared.category):  # fmt: skip
                raise ValueError(f"{metric} is declared {declared.direction} is better, {declared.category}")
            direction, category = declared.direction, declared.category
        elif direction is None or category is None:
            raise ValueError(f"{metric} is not declared by any metric's measures: give its direction and category")
        if not isinstance(slice, str):
            slice = slices.format(slice)
        if "clean" in self.__dict__ and self.clean.nonfinite:
            flags = (*flags, f"nonfinite-logits={self.clean.nonfinite}")
        if estimate.nonfinite:  # resamples where the statistic is undefined (an empty group): left out, said
            flags = (*flags, f"nonfinite-bootstrap-draws={estimate.nonfinite}")
        return Record(
            model=self.model.name,
            task=self.task.name,
            metric=metric,
            value=estimate.value,
            ci_low=estimate.ci_low,
            ci_high=estimate.ci_high,
            n=estimate.n,
            direction=direction,
            category=category,
            slice=slice,
            params={**self.metric_params, **(params or {})},
            flags=flags,
            run_id=self.run_id,
            provenance=self.provenance,
            interval=estimate.method,
        )

    def examples(self) -> pd.DataFrame:
        """Per-example clean outputs: the example's index in the evaluation split, label, prediction,
        confidence, correctness and its attributes (``attr_<name>``)."""
        clean = self.clean
        frame = pd.DataFrame(
            {
                "example": self.split.attributes["index"].to_numpy(),
                "label": clean.labels,
                "prediction": clean.preds,
                "confidence": clean.confidence,
                "correct": clean.correct,
            }
        )
        attributes = self.split.attributes.drop(columns="index").add_prefix("attr_").reset_index(drop=True)
        return pd.concat([frame, attributes], axis=1)
