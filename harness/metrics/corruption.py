"""Accuracy under common corruptions, corruption errors normalised by a baseline model (mCE) and the
relative mCE (Hendrycks and Dietterich, 2019); formulas in docs/metrics.md.

The evaluated examples are read in batches and corrupted on the device, batch by batch, each example
with randomness of its own (seeded by the corruption, the severity, the run's seed and the example's
index), so that every model, run, batch size and subset sees identical corrupted data without a copy
on disk. Within a process, corrupted batches are kept in a bounded in-memory cache
(``HARNESS_CORRUPTION_CACHE_MB``, default 64: the 75 corrupted copies of 1,000 Fashion-MNIST images;
0 turns it off), so that the models of one suite share them; the cache changes no figure. A task that
holds its corrupted copies on disk (``imagenet-c``: ImageNet-C's folders) is read instead, at the same
examples, and recorded the same way; its job spec names those files' fingerprints, not the code's.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness import stats
from harness.figures import image_grid
from harness.files import source_digest
from harness.measures import Measure
from harness.metrics.base import Metric, costly_subset
from harness.registry import metrics
from harness.spec import index_digest

if TYPE_CHECKING:
    import torch

    from harness.context import EvalContext
    from harness.records import Record
    from harness.tasks.base import Split, Task

# The 15 ImageNet-C corruptions, the default set; the 4 extra (speckle_noise, gaussian_blur, spatter,
# saturate) are held out for validation, as in the paper, and can be named in the suite.
STANDARD = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)  # fmt: skip
BASELINES = {"fashion-mnist": "zoo:fmnist-linear"}


def known() -> dict[str, str]:
    """Every corruption name and the modality it perturbs."""
    from harness.attacks.corruptions import CORRUPTIONS
    from harness.attacks.text import TEXT_CORRUPTIONS

    return {**dict.fromkeys(CORRUPTIONS, "image"), **dict.fromkeys(TEXT_CORRUPTIONS, "text")}


class CorruptionParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    corruptions: tuple[str, ...] | None = Field(
        None, description="default: the 15 ImageNet-C corruptions (images), every text perturbation (text)"
    )
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)  # sorted; the figure shows the last
    examples: int | None = Field(
        None, ge=1, description="seeded subset of the evaluated examples (default: 1,000, or all under --limit)"
    )
    baseline: str | None = Field(
        None, description="model whose errors normalise CE (default per task; without one, no CE or mCE)"
    )

    @field_validator("corruptions")
    @classmethod
    def _known(cls, names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        from harness.registry import unknown_name_message

        for name in names or ():
            if name not in known():
                raise ValueError(unknown_name_message("corruption", name, sorted(known())))
        return names

    def names(self, modality: str) -> tuple[str, ...]:
        if self.corruptions is not None:
            return self.corruptions
        from harness.attacks.text import TEXT_CORRUPTIONS

        return STANDARD if modality == "image" else tuple(TEXT_CORRUPTIONS)

    @field_validator("severities")
    @classmethod
    def _range(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if not values or any(v not in range(1, 6) for v in values):
            raise ValueError("severities are 1 to 5")
        return tuple(sorted(set(values)))


@cache
def code_version() -> str:
    """The hash of the code that generates corrupted inputs (the image corruptions and the text
    perturbations): editing it changes the corrupted data, so it keys the disk cache and the job spec."""
    import harness.attacks.corruptions as image
    import harness.attacks.text as text

    return source_digest([*sorted(Path(image.__file__).parent.glob("*.py")), Path(text.__file__)])


class BatchCache:
    """Corrupted batches as uint8, least recently used first out, at most ``limit`` bytes in all."""

    def __init__(self) -> None:
        self.items: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self.bytes = 0

    @property
    def limit(self) -> int:
        return int(float(os.environ.get("HARNESS_CORRUPTION_CACHE_MB", "64")) * 2**20)

    def get(self, key: tuple) -> torch.Tensor | None:
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        return None

    def put(self, key: tuple, pixels: torch.Tensor) -> None:
        size = pixels.numel()
        if size > self.limit:
            return
        self.items[key] = pixels
        self.bytes += size
        while self.bytes > self.limit:
            _, old = self.items.popitem(last=False)
            self.bytes -= old.numel()


_BATCHES = BatchCache()


def corrupted(images: torch.Tensor, indices: np.ndarray, name: str, severity: int, seed: int,
              data_fp: str) -> torch.Tensor:  # fmt: skip
    """A batch corrupted on its device and quantised to uint8 as an image file would hold it, then
    float in [0, 1] again; from the in-memory cache when this batch was corrupted before."""
    import torch

    from harness.attacks.corruptions import corrupt

    key = (data_fp, index_digest(indices), name, severity, seed, code_version(), str(images.device))
    pixels = _BATCHES.get(key)
    if pixels is None:
        pixels = (corrupt(images, name, severity, seed, indices=indices) * 255).round().to(torch.uint8)
        _BATCHES.put(key, pixels)
    return pixels.float() / 255


# The baseline's errors on each (corruption, severity) and clean, by (baseline, evaluated examples, task
# fingerprint, seed): every model of a run is normalised by the same baseline errors, computed once per
# process (the baseline runs beside the first model, on the same corrupted batches).
_BASELINE: dict[tuple[str | None, str, str, int], np.ndarray] = {}


def grid_examples(labels: np.ndarray, columns: int = 6) -> np.ndarray:
    """The first example of each of the first ``columns`` classes, for the figure."""
    _, first = np.unique(labels, return_index=True)
    return np.sort(first)[:columns]


def weights_from_rows(rows: np.ndarray, n: int) -> np.ndarray:
    """Resample counts per example for each index row: [B, n] rows -> [B, n] weights."""
    b = rows.shape[0]
    return np.bincount((rows + n * np.arange(b)[:, None]).ravel(), minlength=b * n).reshape(b, n).astype(np.float64)


@metrics.register("corruption", "accuracy under ImageNet-C corruptions or text perturbations; CE and mCE "
                                "against a baseline model")  # fmt: skip
class Corruption(Metric):
    name = "corruption"
    version = 2
    category = "robustness"
    measures = (
        Measure("corruption.accuracy", "higher", "robustness", ("corruption",),
                ("corruption", "{corruption:.+@[0-9]+}"), key_slices={"corruption": "*@3"}, percent=True),
        Measure("corruption.mean_accuracy", "higher", "robustness", percent=True),
        Measure("corruption.ce", "lower", "robustness", ("corruption",)),
        Measure("corruption.mce", "lower", "robustness"),
        Measure("corruption.relative_mce", "lower", "robustness"),
    )  # fmt: skip
    modalities = frozenset({"image", "text"})
    Params: type[BaseModel] = CorruptionParams

    def check(self, task: Task, params: BaseModel) -> None:
        assert isinstance(params, CorruptionParams)
        kinds = known()
        wrong = [n for n in params.names(task.modality) if kinds[n] != task.modality]
        if wrong:
            raise ValueError(f"{', '.join(wrong)} perturb {kinds[wrong[0]]} inputs; {task.name} is {task.modality}")

    def resolve(self, params: BaseModel, task: Task, *, n: int, cut: bool) -> BaseModel:
        assert isinstance(params, CorruptionParams)
        params = super().resolve(params, task, n=n, cut=cut)
        return params.model_copy(update={"corruptions": params.names(task.modality),
                                         "baseline": params.baseline or BASELINES.get(task.name)})  # fmt: skip

    def depends(self, params: BaseModel, task: Task) -> dict[str, object]:
        """The baseline model's fingerprint (retrain it and every CE is stale) and the corruption code."""
        from harness.models import canonical_name, fingerprint_model, load_model

        assert isinstance(params, CorruptionParams)
        cells = [(n, s) for n in params.names(task.modality) for s in params.severities]
        read = {f"{n}@{s}": split.fingerprint for n, s in cells if (split := self._read(task, n, s)) is not None}
        out: dict[str, object] = {"pregenerated": read} if read else {}
        if len(read) < len(cells):
            out["corruption_code"] = code_version()
        if params.baseline is not None:
            name = canonical_name(params.baseline)
            fingerprint = fingerprint_model(name, task) or load_model(name, task).fingerprint
            out["baseline"] = {"name": name, "fingerprint": fingerprint}
        return out

    @staticmethod
    def _read(task: Task, name: str, severity: int) -> Split | None:
        """The task's own corrupted copy of its split (ImageNet-C's folders), or None: generated here."""
        return None if task.modality == "text" else task.pregenerated(name, severity)

    @staticmethod
    def _batches(ctx: EvalContext, split: Split, positions: np.ndarray) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
        """``split`` at ``positions`` in batches: (inputs on the device, their rows among the positions).
        Texts are held in memory and perturbed as strings, in one batch."""
        if ctx.task.modality == "text":
            yield split.take(positions), np.arange(len(positions))
            return
        done = 0
        for batch, rows in split.batches(ctx.batch_size, positions=positions, workers=ctx.workers, device=ctx.device):
            yield batch, np.arange(done, done + len(rows))
            done += len(rows)

    def compute(self, ctx: EvalContext, params: BaseModel) -> list[Record]:
        import pandas as pd

        from harness.models import load_model

        assert isinstance(params, CorruptionParams)
        baseline = params.baseline  # resolved: the suite's, else the task's default, else None
        picked = costly_subset(ctx, params.examples)
        labels, clean_correct = ctx.clean.labels[picked], ctx.clean.correct[picked]
        indices = ctx.split.attributes["index"].to_numpy()[picked]  # each example's index in the split
        names, sevs = params.names(ctx.task.modality), params.severities
        cells = [(name, severity) for name in names for severity in sevs]
        text = ctx.task.modality == "text"
        if text:
            from harness.attacks.text import perturb
            from harness.tasks.text import decode_texts, encode_texts
        data_fp = f"{ctx.task.fingerprint}/{ctx.split.decoding}"  # the files, as this model has them decoded
        base_key = (baseline, index_digest(indices), data_fp, ctx.seed)
        base_model = None
        if baseline is not None and base_key not in _BASELINE:
            base_model = load_model(baseline, ctx.task).to(ctx.device)
        correct = np.zeros((len(cells), len(labels)), dtype=bool)
        base_wrong = np.zeros((len(cells) + 1, len(labels)), dtype=bool)  # the last row: clean
        shown = grid_examples(labels)
        grid: dict[str, dict[int, np.ndarray]] = {}  # column -> position -> image

        def base_errors(inputs: torch.Tensor, rows: np.ndarray, cell: int) -> None:
            if base_model is not None:
                preds = np.concatenate([base_model.logits(inputs[i : i + ctx.batch_size]).argmax(1).cpu().numpy()
                                        for i in range(0, len(inputs), ctx.batch_size)])  # fmt: skip
                base_wrong[cell, rows] = preds != labels[rows]

        def score(k: int, inputs: torch.Tensor, rows: np.ndarray) -> None:
            name, severity = cells[k]
            if not text and severity == sevs[-1]:
                show = np.flatnonzero(np.isin(rows, shown))
                grid.setdefault(name, {}).update(zip(rows[show], inputs[show].cpu().numpy(), strict=True))
            correct[k, rows] = ctx.predict(inputs) == labels[rows]
            base_errors(inputs, rows, k)

        read = {k: split for k, cell in enumerate(cells) if (split := self._read(ctx.task, *cell)) is not None}
        for number, (batch, rows) in enumerate(self._batches(ctx, ctx.split, picked)):
            base_errors(batch, rows, len(cells))
            show = np.flatnonzero(np.isin(rows, shown))
            if not text:
                grid.setdefault("clean", {}).update(zip(rows[show], batch[show].cpu().numpy(), strict=True))
            for k, (name, severity) in enumerate(cells):
                if k in read:
                    continue
                ctx.stage(f"batch {number + 1}: {name}@{severity}", k, len(cells))
                if text:
                    inputs = encode_texts(perturb(decode_texts(batch), indices[rows], name, severity, ctx.seed))
                else:
                    inputs = corrupted(batch, indices[rows], name, severity, ctx.seed, data_fp)
                score(k, inputs, rows)
        for k, split in read.items():  # read from the task's folders, at the same examples, in the same order
            for number, (inputs, rows) in enumerate(self._batches(ctx, split, indices)):
                ctx.stage(f"{'@'.join(map(str, cells[k]))} (read): batch {number + 1}", k, len(cells))
                score(k, inputs, rows)
        if baseline is not None:
            if base_key not in _BASELINE:
                _BASELINE[base_key] = base_wrong
            base_wrong = _BASELINE[base_key]
        out: list[Record] = []
        opts = ctx.bootstrap_options
        record_params = {"corruptions": list(names), "severities": list(sevs), "baseline": baseline,
                         "examples": len(picked)}  # fmt: skip
        outcomes: dict[str, np.ndarray] = {"example": indices, "clean": clean_correct}
        for k, (name, severity) in enumerate(cells):
            outcomes[f"{name}@{severity}"] = correct[k]
            estimate = stats.proportion(correct[k], **opts)
            out.append(ctx.record("corruption.accuracy", estimate, slice=f"corruption={name}@{severity}",
                                  params=record_params))  # fmt: skip
        model_err = ~correct.reshape(len(names), len(sevs), -1)
        base_err = base_wrong[:-1].reshape(len(names), len(sevs), -1)
        ctx.outputs["corruption"] = pd.DataFrame(outcomes)  # correct or not per example, for paired comparisons
        if not text:
            rows_shown = np.stack([np.stack([grid[column][p] for p in shown]) for column in ["clean", *names]])
            ctx.figures[f"corruptions@{sevs[-1]}"] = image_grid(
                rows_shown, ["clean", *names], [ctx.task.classes[k] for k in labels[shown]],
                title=f"{ctx.task.name}: each corruption at severity {sevs[-1]}",
            )  # fmt: skip
        n = len(labels)
        flat_m = model_err.reshape(-1, n).T.astype(np.float64)  # [n, C*S]

        def sums(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
            w = weights_from_rows(rows, n)
            return (w @ values) / w.sum(1, keepdims=True)  # [B, k] mean error of each column

        def mean_accuracy(rows: np.ndarray) -> np.ndarray:
            return 1 - sums(rows, flat_m).mean(1)

        out.append(
            ctx.record("corruption.mean_accuracy", stats.bootstrap(mean_accuracy, n, **opts), params=record_params)
        )
        if baseline is None:  # CE needs a baseline's errors: the task has none and the suite named none
            return out
        clean_err = (~clean_correct).astype(np.float64)
        base_clean_err = base_wrong[-1].astype(np.float64)
        flat_b = base_err.reshape(-1, n).T.astype(np.float64)
        c, s = len(names), len(sevs)

        def ce_per_corruption(rows: np.ndarray) -> np.ndarray:
            m = sums(rows, flat_m).reshape(-1, c, s).sum(2)
            b = sums(rows, flat_b).reshape(-1, c, s).sum(2)
            return m / np.maximum(b, 1e-12)

        def mce(rows: np.ndarray) -> np.ndarray:
            return ce_per_corruption(rows).mean(1)

        def relative_mce(rows: np.ndarray) -> np.ndarray:
            m = sums(rows, flat_m).reshape(-1, c, s).sum(2) - s * sums(rows, clean_err[:, None])
            b = sums(rows, flat_b).reshape(-1, c, s).sum(2) - s * sums(rows, base_clean_err[:, None])
            return (m / np.where(np.abs(b) > 1e-12, b, np.nan)).mean(1)

        out.append(ctx.record("corruption.mce", stats.bootstrap(mce, n, **opts), params=record_params))  # fmt: skip
        out.append(
            ctx.record("corruption.relative_mce", stats.bootstrap(relative_mce, n, **opts), params=record_params)
        )
        for i, name in enumerate(names):
            estimate = stats.bootstrap(lambda rows, i=i: ce_per_corruption(rows)[:, i], n, **opts)
            out.append(ctx.record("corruption.ce", estimate, slice=f"corruption={name}",
                                  params=record_params))  # fmt: skip
        return out
