"""Out-of-distribution detection: how well each detector's score separates the evaluated split
(in-distribution, ID) from each OOD set, as AUROC, AUPR-In, AUPR-Out, FPR at 95% TPR and detection
accuracy (``harness.metrics.curves`` states the conventions), each with a bootstrap interval that
resamples the ID and the OOD examples separately (stratified).

One pass per split (the evaluated one, each OOD set, and a seeded sample of the training split where a
detector is fitted, its features cached across jobs and runs) gives the logits and, where a detector
reads them, the penultimate features: the input of the model's last ``nn.Linear`` unless the
parameter ``layer`` names a module. Per-example
scores are stored (kind ``ood``: one row per example of each source) for paired comparisons."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from harness import stats
from harness.detectors import Detector, DetectorError, Outputs, get_detector
from harness.figures import score_histograms
from harness.measures import Measure
from harness.metrics import curves
from harness.metrics.base import Metric
from harness.metrics.curves import DETECTION, detection
from harness.registry import detectors, metrics

if TYPE_CHECKING:
    import torch
    from torch import nn

    from harness.context import EvalContext
    from harness.records import Record
    from harness.tasks.base import Split, Task

DEFAULT_DETECTORS = ("msp", "max-logit", "energy", "odin", "mahalanobis", "knn")
NEAR_FMNIST = ("sklearn-digits", "noise:uniform", "noise:gaussian")
PERMUTED = "permuted-columns"
TABULAR_SETS = {"adult": ("german-as-adult", PERMUTED)}  # real rows of another population, where one maps
DIRECTIONS = {"auroc": "higher", "aupr_in": "higher", "aupr_out": "higher", "fpr_at_95_tpr": "lower",
              "fpr_at_95_tpr_ood": "lower", "detection_accuracy": "higher"}  # fmt: skip


class OodParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    sets: tuple[str, ...] | None = Field(None, description="OOD tasks; default: digits and noise for 28x28 grey "
                                                           "images, noise for other images")  # fmt: skip
    detectors: tuple[str, ...] | None = Field(None, description="default: every detector for images; all but "
                                                              "odin (input gradients) for tables and text")  # fmt: skip
    fit_examples: int = Field(5000, ge=1, description="training examples the feature detectors are fitted on")
    layer: str | None = Field(None, description="the module whose input is the features (default: the last Linear)")


def default_sets(task: Task) -> tuple[str, ...]:
    if task.modality == "tabular":
        return TABULAR_SETS.get(task.name, (PERMUTED,))
    if task.modality != "image":
        return ()
    return NEAR_FMNIST if tuple(task.input_shape) == (1, 28, 28) else NEAR_FMNIST[1:]


def default_detectors(task: Task) -> tuple[str, ...]:
    """ODIN moves the input along its gradient in the input's own units: images only."""
    return DEFAULT_DETECTORS if task.modality == "image" else tuple(d for d in DEFAULT_DETECTORS if d != "odin")


class Shifted:
    """Covariate shift as an OOD set, ``corruption:<name>@<severity>``: the evaluated split's own examples
    under one corruption (each seeded by its index, as the corruption metric draws them), held in memory."""

    def __init__(self, name: str, task: Task) -> None:
        from harness.attacks.corruptions import CORRUPTIONS

        corruption, _, severity = name.removeprefix("corruption:").partition("@")
        if corruption not in CORRUPTIONS or severity not in {"1", "2", "3", "4", "5"}:
            raise ValueError(f"ood: set {name!r}: expected corruption:<name>@<1-5> with a corruption of "
                             f"{', '.join(sorted(CORRUPTIONS))}")  # fmt: skip
        if task.modality != "image":
            raise ValueError(f"ood: set {name!r} corrupts images; task {task.name!r} holds {task.modality}")
        self.name, self.task, self.corruption, self.severity = name, task, corruption, int(severity)
        self.input_shape = tuple(task.input_shape)

    @property
    def fingerprint(self) -> str:
        from harness.metrics.corruption import code_version
        from harness.tasks.base import fingerprint_arrays

        return fingerprint_arrays(extra=f"{self.task.fingerprint}/{self.name}/{code_version()}")

    def load(self) -> Split:
        import torch

        from harness.attacks.corruptions import corrupt
        from harness.tasks.base import Split

        clean = self.task.load()
        parts = [corrupt(batch, self.corruption, self.severity, indices=clean.attributes["index"].to_numpy()[rows])
                 for batch, rows in clean.batches(256)]  # fmt: skip
        return Split(self.task.name, self.name, torch.cat(parts), clean.labels, clean.attributes, self.fingerprint)


class Permuted:
    """``permuted-columns``: the evaluated split's rows with each feature column shuffled on its own
    (seeded): every feature keeps its distribution, the rows lose the dependence between features, the
    near-OOD set of any table."""

    name = PERMUTED
    seed = 0

    def __init__(self, task: Task) -> None:
        if task.modality != "tabular":
            raise ValueError(f"ood: set {PERMUTED!r} shuffles the columns of a table; task {task.name!r} holds "
                             f"{task.modality}")  # fmt: skip
        self.task, self.input_shape = task, tuple(task.input_shape)

    @property
    def fingerprint(self) -> str:
        from harness.tasks.base import fingerprint_arrays

        return fingerprint_arrays(extra=f"{self.task.fingerprint}/{self.name}/seed={self.seed}")

    def load(self) -> Split:
        from harness.tasks.base import Split

        clean = self.task.load()
        rows = clean.inputs.clone()
        rng = np.random.default_rng(self.seed)
        for j in range(rows.shape[1]):
            rows[:, j] = rows[rng.permutation(len(rows)), j]
        return Split(self.task.name, self.name, rows, clean.labels, clean.attributes, self.fingerprint)


def ood_task(name: str, task: Task) -> Task | Shifted | Permuted:
    """An OOD set by task name, ``corruption:<name>@<severity>`` (covariate shift of the evaluated
    split) or ``permuted-columns`` (its table's columns shuffled apart); a set that fits any shape
    (noise) takes the evaluated task's."""
    from harness.registry import tasks as registry
    from harness.tasks import get_task, parse

    if name.startswith("corruption:"):
        return Shifted(name, task)
    if name == PERMUTED:
        return Permuted(task)
    factory = registry.get(parse(name)[0])
    if getattr(factory, "fits_any_shape", False):
        return get_task(name, shape=list(task.input_shape))
    return get_task(name)


def penultimate(module: nn.Module, layer: str | None) -> nn.Module:
    """The module whose input is the features: ``layer`` by name, else the last ``nn.Linear`` (the
    head the binarization tests read features from too)."""
    from harness.attacks.active import last_linear

    if layer is not None:
        named = dict(module.named_modules())
        if layer not in named:
            raise DetectorError(f"layer {layer!r} is not a module of the model; some are {list(named)[-5:]}")
        return named[layer]
    head = last_linear(module)
    if head is None:
        raise DetectorError("the model has no nn.Linear whose input would be its penultimate features: "
                            "name the feature layer with the ood parameter layer=<module name>")  # fmt: skip
    return head


def outputs_of(ctx: EvalContext, split: Split, chosen: list[Detector], layer: str | None, label: str, *,
               features: bool = False) -> Outputs:  # fmt: skip
    """One pass over ``split``: logits, features where a detector reads them (or ``features`` asks),
    input detectors' scores (their own passes leave no features)."""
    import torch

    model = ctx.model.to(ctx.device)
    inputs_detectors = [d for d in chosen if d.reads == "inputs"]
    captured: list[torch.Tensor] = []
    listening = [True]

    def keep(_module: nn.Module, args: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        if listening[0]:
            captured.append(args[0].detach().flatten(1).float().cpu())

    features = features or any(d.reads == "features" for d in chosen)
    hook = penultimate(model.module, layer).register_forward_hook(keep) if features else None
    logits, scored, done = [], {d.name: [] for d in inputs_detectors}, 0
    try:
        for batch, _ in split.batches(ctx.batch_size, workers=ctx.workers, device=ctx.device):
            listening[0] = True
            logits.append(ctx._batch_logits(batch, done).cpu())
            listening[0] = False
            for d in inputs_detectors:
                scored[d.name].append(d.score_batch(model.module, batch.to(model.device), model.surrogate).cpu())
            done += len(batch)
            ctx.stage(f"{label}: {done}/{len(split)}", done, len(split))
    finally:
        if hook is not None:
            hook.remove()
    return Outputs(
        torch.cat(logits).numpy().astype(np.float64),
        torch.cat(captured).numpy() if captured else None,
        {name: torch.cat(parts).numpy().astype(np.float64) for name, parts in scored.items()},
    )


def training_features(ctx: EvalContext, sample: Split, layer: str | None, label: str) -> np.ndarray:
    """The penultimate features of the training sample the fitted detectors learn from, computed once per
    (model, sample, layer, device) and kept in the cache (``$HARNESS_CACHE/ood-features``): every job
    of the model on the task (other OOD sets, detectors, runs) fits on the same features."""
    import hashlib

    from harness.files import atomic_write, cache_root

    key = hashlib.sha256(f"{ctx.model.fingerprint}/{sample.fingerprint}/{layer}/{ctx.device.type}".encode())
    where = cache_root() / "ood-features" / f"{key.hexdigest()[:24]}.npy"
    try:
        return np.load(where, allow_pickle=False)
    except (OSError, ValueError):
        pass
    features = outputs_of(ctx, sample, [], layer, label, features=True).features
    assert features is not None
    try:
        with atomic_write(where) as tmp, tmp.open("wb") as f:
            np.save(f, features, allow_pickle=False)
    except OSError:  # a read-only cache only costs the next job the pass
        pass
    return features


@metrics.register("ood", "out-of-distribution detection: AUROC, AUPR, FPR@95%TPR per detector and OOD set")
class OutOfDistribution(Metric):
    name = "ood"
    category = "ood"
    # 2: FPR@95%TPR in both conventions (fpr_at_95_tpr: ID positive, OpenOOD's paper; fpr_at_95_tpr_ood: OOD
    #    positive, OpenOOD's and pytorch-ood's code)
    version = 2
    needs = frozenset({"clean", "gradients"})
    task_params = ("sets",)
    Params = OodParams
    measures = tuple(
        Measure(f"ood.{figure}", DIRECTIONS[figure], "ood", ("detector", "set"), percent=True,
                key_slices={"detector": "*", "set": "*"} if figure in ("auroc", "fpr_at_95_tpr", "fpr_at_95_tpr_ood")
                else None)
        for figure in DETECTION
    )  # fmt: skip

    def sets(self, params: OodParams, task: Task) -> tuple[str, ...]:
        return params.sets if params.sets is not None else default_sets(task)

    def resolve(self, params: BaseModel, task: Task, *, n: int, cut: bool) -> BaseModel:
        assert isinstance(params, OodParams)
        return params if params.detectors else params.model_copy(update={"detectors": default_detectors(task)})

    def check(self, task: Task, params: BaseModel) -> None:
        assert isinstance(params, OodParams)
        params = self.resolve(params, task, n=0, cut=False)
        for name in params.detectors:
            if name not in detectors:
                raise ValueError(f"ood: unknown detector {name!r}; known: {', '.join(detectors.names())}")
            if get_detector(name).reads == "inputs" and task.modality != "image":
                raise ValueError(f"ood: detector {name!r} moves inputs along their gradient, which only "
                                 f"images have; task {task.name!r} holds {task.modality}: leave it out of "
                                 "detectors")  # fmt: skip
        sets = self.sets(params, task)
        if not sets:
            raise ValueError(f"ood: task {task.name!r} has no default OOD set: name one with sets: [...] "
                             "or --ood-task")  # fmt: skip
        for name in sets:
            other = ood_task(name, task)
            if tuple(other.input_shape) != tuple(task.input_shape):
                raise ValueError(f"ood: set {name!r} holds inputs of shape {tuple(other.input_shape)}, task "
                                 f"{task.name!r} {tuple(task.input_shape)}")  # fmt: skip
        fitted = [n for n in params.detectors if get_detector(n).fitted]
        if fitted and task.training_split is None:
            raise ValueError(f"ood: detectors {fitted} are fitted on a training split and task {task.name!r} has "
                             f"only {list(task.splits)}: leave them out of detectors")  # fmt: skip

    def depends(self, params: BaseModel, task: Task) -> dict[str, Any]:
        assert isinstance(params, OodParams)
        params = self.resolve(params, task, n=0, cut=False)
        sets = {name: ood_task(name, task).fingerprint for name in self.sets(params, task)}
        fitted = any(get_detector(n).fitted for n in params.detectors)
        split = task.training_split if fitted else None
        settings = {n: get_detector(n).settings() for n in params.detectors}
        return {"sets": sets, "fitted_on": split and task.load(split).fingerprint, "detector_settings": settings}

    def compute(self, ctx: EvalContext, params: BaseModel) -> list[Record]:
        import pandas as pd

        assert isinstance(params, OodParams)
        params = self.resolve(params, ctx.task, n=len(ctx.split), cut=False)  # a caller may pass them unresolved
        chosen = [get_detector(n) for n in params.detectors]
        if any(d.fitted for d in chosen):
            from harness.variants.fitted import FittedOnSplit

            split_name = ctx.task.training_split
            sample = FittedOnSplit.sample(ctx.task, split_name, {"examples": params.fit_examples, "seed": ctx.seed},
                                          ctx.model)  # fmt: skip
            features = training_features(ctx, sample, params.layer, f"fit on {split_name}")
            for d in chosen:
                if d.fitted:
                    d.fit(features, sample.labels.numpy())
        inside = outputs_of(ctx, ctx.split, chosen, params.layer, "in-distribution")
        scores_in = {d.name: d.score(inside) for d in chosen}
        frames = [pd.DataFrame({"example": ctx.split.attributes["index"].to_numpy(), "set": "in", **scores_in})]
        out: list[Record] = []
        opts = ctx.bootstrap_options
        scores_of: dict[str, dict[str, np.ndarray]] = {}
        for set_name in self.sets(params, ctx.task):
            other = ood_task(set_name, ctx.task).load()
            outside = outputs_of(ctx, other, chosen, params.layer, set_name)
            scores_out = scores_of[set_name] = {d.name: d.score(outside) for d in chosen}
            frames.append(pd.DataFrame({"example": other.attributes["index"].to_numpy(), "set": set_name,
                                        **scores_out}))  # fmt: skip
            for d in chosen:
                for figure, estimate in stratified(scores_in[d.name], scores_out[d.name], **opts).items():
                    out.append(ctx.record(f"ood.{figure}", estimate, slice={"detector": d.name, "set": set_name},
                                          params={"convention": CONVENTION, "ood_examples": len(other),
                                                  **d.settings()}))  # fmt: skip
        ctx.outputs["ood"] = pd.concat(frames, ignore_index=True)
        title = (f"{ctx.model.name}: {ctx.task.name} (blue) against each OOD set (red)\n"
                 "scores clipped to their 0.5-99.5th percentiles")  # fmt: skip
        ctx.figures["ood-scores"] = score_histograms(scores_in, scores_of, title)
        return out


CONVENTION = (
    "scores higher for in-distribution; ID positive for AUROC, AUPR-In and fpr_at_95_tpr (the OOD share "
    "accepted at the highest threshold keeping >= 95% of ID, as OpenOOD's paper); OOD positive for AUPR-Out and "
    "fpr_at_95_tpr_ood (the ID share flagged at the lowest threshold flagging >= 95% of OOD, as OpenOOD's and "
    "pytorch-ood's code)"
)


def stratified(scores_in: np.ndarray, scores_out: np.ndarray, *, resamples: int = 1000,
               seed: int = 0) -> dict[str, stats.Estimate]:  # fmt: skip
    """Every detection figure with its percentile bootstrap interval, the ID and OOD examples resampled
    separately."""
    return curves.stratified(lambda rows_in, rows_out: detection(scores_in, scores_out, rows_in, rows_out),
                             len(scores_in), len(scores_out), resamples=resamples, seed=seed)  # fmt: skip
