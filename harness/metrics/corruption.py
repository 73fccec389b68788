"""Accuracy under common corruptions, corruption errors normalised by a baseline model (mCE) and the
relative mCE (Hendrycks and Dietterich, 2019); formulas in docs/metrics.md.

Corrupted copies of the evaluated images are made once per (task fingerprint, examples, corruption,
severity, seed) and shared by every model of the run (in memory) and of later runs (on disk, as
uint8 safetensors under ``$HARNESS_CACHE`` or ``~/.cache/harness``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness import stats
from harness.figures import image_grid
from harness.files import source_digest
from harness.measures import Measure
from harness.metrics.base import Metric, costly_subset
from harness.registry import metrics

if TYPE_CHECKING:
    import torch

    from harness.context import EvalContext
    from harness.models.base import Model
    from harness.records import Record
    from harness.tasks.base import Task

# The 15 ImageNet-C corruptions, the default set; the 4 extra (speckle_noise, gaussian_blur, spatter,
# saturate) are held out for validation, as in the paper, and can be named in the suite.
STANDARD = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)  # fmt: skip
BASELINES = {"fashion-mnist": "zoo:fmnist-linear"}
CHUNK = 500  # images corrupted per call: bounded memory; each chunk draws its own randomness


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


def cache_dir() -> Path:
    return Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "harness")) / "corruptions"


@cache
def code_version() -> str:
    """The hash of the code that generates corrupted inputs (the image corruptions and the text
    perturbations): editing it changes the corrupted data, so it keys the disk cache and the job spec."""
    import harness.attacks.corruptions as image
    import harness.attacks.text as text

    return source_digest([*sorted(Path(image.__file__).parent.glob("*.py")), Path(text.__file__)])


def corrupted(task_fp: str, split_fp: str, images: torch.Tensor, name: str, severity: int, seed: int) -> torch.Tensor:
    """``images`` corrupted, as uint8, from the disk cache or made once and written there."""
    import torch
    from safetensors.torch import load_file, save_file

    from harness.attacks.corruptions import corrupt
    from harness.files import atomic_write

    path = cache_dir() / task_fp / f"{split_fp}-{name}-{severity}-{seed}-{code_version()}.safetensors"
    if path.is_file():
        try:
            pixels = load_file(str(path))["images"]
            if pixels.shape == images.shape:
                return pixels
        except Exception:  # a damaged cache file is made again
            pass
    chunks = range(0, len(images), CHUNK)
    out = torch.cat([corrupt(images[i : i + CHUNK], name, severity, seed, chunk=i // CHUNK) for i in chunks])
    pixels = (out * 255).round().to(torch.uint8).contiguous()
    with atomic_write(path) as tmp:
        save_file({"images": pixels}, str(tmp))
    return pixels


# The baseline's predictions, by (baseline, split fingerprint, corruption, severity, seed): every model
# of a run is normalised by the same baseline errors, which are computed once per process.
_BASELINE: dict[tuple[str, str, str | None, int, int], np.ndarray] = {}


def grid_examples(labels: np.ndarray, columns: int = 6) -> np.ndarray:
    """The first example of each of the first ``columns`` classes, for the figure."""
    _, first = np.unique(labels, return_index=True)
    return np.sort(first)[:columns]


def predictions(model: Model, images: torch.Tensor, batch_size: int) -> np.ndarray:
    return np.concatenate(
        [model.logits(images[i : i + batch_size]).argmax(1).numpy() for i in range(0, len(images), batch_size)]
    )


def weights_from_rows(rows: np.ndarray, n: int) -> np.ndarray:
    """Resample counts per example for each index row: [B, n] rows -> [B, n] weights."""
    b = rows.shape[0]
    return np.bincount((rows + n * np.arange(b)[:, None]).ravel(), minlength=b * n).reshape(b, n).astype(np.float32)


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
        out: dict[str, object] = {"corruption_code": code_version()}
        if params.baseline is not None:
            name = canonical_name(params.baseline)
            fingerprint = fingerprint_model(name, task) or load_model(name, task).fingerprint
            out["baseline"] = {"name": name, "fingerprint": fingerprint}
        return out

    def compute(self, ctx: EvalContext, params: BaseModel) -> list[Record]:
        from harness.models import load_model

        assert isinstance(params, CorruptionParams)
        baseline = params.baseline  # resolved: the suite's, else the task's default, else None
        picked = costly_subset(ctx, params.examples)
        split = ctx.split.subset(picked)
        images = split.take(np.arange(len(split)), workers=ctx.workers)
        labels, clean_correct = ctx.clean.labels[picked], ctx.clean.correct[picked]
        split_fp = split.fingerprint
        names, sevs = params.names(ctx.task.modality), params.severities
        text = ctx.task.modality == "text"
        if text:
            from harness.attacks.text import perturb
            from harness.tasks.text import decode_texts, encode_texts

            strings, example_ids = decode_texts(images), split.attributes["index"].to_numpy()
        loaded: list[Model] = []

        def base_predictions(corruption: str | None, severity: int, pixels: Callable[[], torch.Tensor]) -> np.ndarray:
            key = (baseline, split_fp, corruption, severity, ctx.seed)
            if key not in _BASELINE:
                if not loaded:
                    loaded.append(load_model(baseline, ctx.task))
                _BASELINE[key] = predictions(loaded[0], pixels(), ctx.batch_size)
            return _BASELINE[key]

        def perturbed(name: str, severity: int) -> torch.Tensor:
            """The evaluated inputs under ``name`` at ``severity``, in the task's raw space."""
            if text:
                return encode_texts(perturb(strings, example_ids, name, severity, ctx.seed))
            return corrupted(ctx.task.fingerprint, split_fp, images, name, severity, ctx.seed).float() / 255

        model_err = np.zeros((len(names), len(sevs), len(labels)), dtype=np.float32)
        base_err = np.zeros_like(model_err)
        out: list[Record] = []
        opts = ctx.bootstrap_options
        record_params = {"corruptions": list(names), "severities": list(sevs), "baseline": baseline,
                         "examples": len(picked)}  # fmt: skip
        outcomes: dict[str, np.ndarray] = {"example": split.attributes["index"].to_numpy(), "clean": clean_correct}
        shown = grid_examples(labels)
        grid_rows = [] if text else [images[shown].numpy()]
        for i, name in enumerate(names):
            for j, severity in enumerate(sevs):
                ctx.stage(f"{name}@{severity}", i * len(sevs) + j, len(names) * len(sevs))
                inputs = perturbed(name, severity)
                if severity == sevs[-1] and not text:
                    grid_rows.append(inputs[shown].numpy())
                correct = ctx.predict(inputs) == labels
                outcomes[f"{name}@{severity}"] = correct
                model_err[i, j] = ~correct
                if baseline is not None:
                    base_err[i, j] = base_predictions(name, severity, lambda x=inputs: x) != labels
                out.append(
                    ctx.record(
                        "corruption.accuracy",
                        stats.proportion(correct, **opts),
                        slice=f"corruption={name}@{severity}",
                        params=record_params,
                    )
                )
        ctx.outputs["corruption"] = pd.DataFrame(outcomes)  # correct or not per example, for paired comparisons
        if not text:
            ctx.figures[f"corruptions@{sevs[-1]}"] = image_grid(
                np.stack(grid_rows), ["clean", *names], [ctx.task.classes[k] for k in labels[shown]],
                title=f"{ctx.task.name}: each corruption at severity {sevs[-1]}",
            )  # fmt: skip
        n = len(labels)
        flat_m = model_err.reshape(-1, n).T  # [n, C*S]

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
        clean_err = (~clean_correct).astype(np.float32)
        base_clean_err = (base_predictions(None, 0, lambda: images) != labels).astype(np.float32)
        flat_b = base_err.reshape(-1, n).T
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
