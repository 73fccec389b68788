"""Interpretability: each model's predictions explained by captum attribution methods, and the
explanations scored for faithfulness, robustness, complexity and sanity (``harness.explain``).

A fixed, seeded set of examples is explained for the class the model predicts. Per (model, method):
deletion and insertion AUC, faithfulness correlation, captum's ``infidelity`` (normalised) and
``sensitivity_max``, sparseness, and the model-parameter randomisation test with its pass or fail
verdict, which flags every score of a method that fails it. Tabular tasks add each feature's global
importance and the explanation quality per group of the task's sensitive features, with the gap
between groups. Definitions: ``docs/metrics.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from harness import stats
from harness.disparity import estimate as between_estimate
from harness.disparity import largest_mean_gap
from harness.measures import Measure
from harness.metrics.base import Metric
from harness.registry import explainers, metrics

if TYPE_CHECKING:
    import torch

    from harness.context import EvalContext
    from harness.explain.methods import Explain, Method
    from harness.records import Record
    from harness.tasks.base import Task

log = logging.getLogger(__name__)
SCORES = {  # per-example explanation scores and their directions
    "deletion_auc": "lower", "insertion_auc": "higher", "faithfulness_correlation": "higher", "infidelity": "lower",
    "sensitivity_max": "lower", "sparseness": "higher",
}  # fmt: skip
DEFAULT_EXAMPLES = {"image": 64, "tabular": 500, "text": 64}
RANDOMISATION_EXAMPLES = {"image": 32, "tabular": 200, "text": 32}
BASELINES = {"image": ("black", "blurred"), "tabular": ("train-mean",), "text": ("pad",)}
FAILS = "fails-randomisation-test"
UNDEFINED = "randomisation-test-undefined"


class InterpretabilityParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    methods: tuple[str, ...] | None = Field(None, description="explainers; default: every one for the modality")
    examples: int | None = Field(None, ge=4, description="explained; default 64 images, 500 rows; all under --limit")
    baseline: str | None = Field(
        None, description="black or blurred (images; default black), train-mean (tabular), pad (text)"
    )
    deletion_steps: int = Field(20, ge=2)
    subset_fraction: float = Field(0.1, gt=0, lt=1, description="faithfulness correlation: features per subset")
    correlation_runs: int = Field(50, ge=3)
    infidelity_samples: int = Field(10, ge=1)
    infidelity_noise: float = Field(0.02, gt=0, description="std of the noise: pixels, or each feature's std")
    sensitivity_samples: int = Field(5, ge=1)
    sensitivity_radius: float = Field(0.02, gt=0, description="L-inf radius: pixels, or each feature's std")
    randomisation_steps: int = Field(4, ge=1)
    randomisation_examples: int | None = Field(None, ge=4, description="default 32 images, 200 rows")
    randomisation_threshold: float = Field(0.5, gt=-1, lt=1, description="fail at this rank correlation or more")
    ig_steps: int = Field(32, ge=2)
    shap_samples: int = Field(16, ge=1)
    shap_stdev: float = Field(0.09, ge=0)
    occlusion_window: int = Field(4, ge=1)
    occlusion_stride: int = Field(2, ge=1)
    shapley_samples: int = Field(25, ge=1)
    batch_size: int = Field(256, ge=16, description="captum's internal batch (examples x steps per pass)")
    grid_examples: int = Field(6, ge=1, le=20)


def method_names(task: Task, params: InterpretabilityParams) -> list[str]:
    if params.methods is not None:
        return list(params.methods)
    return [e.name for e in explainers.entries() if task.modality in e.obj.modalities]


@metrics.register("interpretability", "captum attributions scored: deletion/insertion AUC, faithfulness, "
                                      "infidelity, sensitivity, sparseness, randomisation sanity check")  # fmt: skip
class Interpretability(Metric):
    name = "interpretability"
    # 2: a score's gap between groups has the simultaneous Welch interval (harness.disparity), not the basic bootstrap
    version = 2
    category = "interpretability"
    measures = (
        *(Measure(f"interpretability.{score}", direction, "interpretability", ("method", "feature", "group"),
                  ("interpretability", f"{{method}}/{score}"), key_slices={"method": "*"} if score == "deletion_auc"
                  else None) for score, direction in SCORES.items()),
        *(Measure(f"interpretability.{score}_gap", "lower", "interpretability", ("method", "feature"))
          for score in ("deletion_auc", "faithfulness_correlation")),
        Measure("interpretability.randomisation_correlation", "lower", "interpretability", ("method", "randomised")),
        Measure("interpretability.randomisation_pass", "higher", "interpretability", ("method",),
                verdicts={1.0: "pass", 0.0: "fail"}),
        Measure("interpretability.feature_importance", "higher", "interpretability", ("method", "feature")),
    )  # fmt: skip
    needs = frozenset({"gradients"})
    Params: type[BaseModel] = InterpretabilityParams

    def default_examples(self, task: Task) -> int:
        """Rows with a missing value are left out of the seeded subset when the data is loaded, so the
        spec's examples are exact for tasks without missing values (every shipped one)."""
        return DEFAULT_EXAMPLES[task.modality]

    def check(self, task: Task, params: BaseModel) -> None:
        assert isinstance(params, InterpretabilityParams)
        for name in method_names(task, params):
            method = explainers.get(name)  # unknown names: a did-you-mean error
            if task.modality not in method.modalities:
                raise ValueError(f"explainer {name!r} works on {', '.join(method.modalities)} tasks, "
                                 f"not on {task.name} ({task.modality})")  # fmt: skip
        if params.baseline is not None and params.baseline not in BASELINES[task.modality]:
            raise ValueError(f"baseline {params.baseline!r} does not fit {task.modality} inputs: expected "
                             f"{' or '.join(BASELINES[task.modality])}")  # fmt: skip
        if not method_names(task, params):
            raise ValueError(f"no explainer works on {task.modality} tasks")

    def depends(self, params: BaseModel, task: Task) -> dict[str, Any]:
        """On tables the baseline (training means and modes) and the sensitivity noise (training stds)
        come from the train split: other training data is another figure."""
        return {"training_data": task.load("train").fingerprint} if task.modality == "tabular" else {}

    def compute(self, ctx: EvalContext, params: BaseModel) -> list[Record]:
        assert isinstance(params, InterpretabilityParams)
        return _Run(ctx, params).records()


class _Run:
    """One (model, task): the explained examples, their baselines and the scores of each method."""

    def __init__(self, ctx: EvalContext, params: InterpretabilityParams) -> None:
        import torch

        from harness.explain import baselines
        from harness.explain.methods import Settings

        self.ctx, self.params = ctx, params
        self.task, self.device = ctx.task, ctx.device
        self.modality = self.task.modality
        self.module = ctx.model.to(self.device).module.eval()
        if self.modality == "text":  # explained in token ids: the tokenizer is not differentiable
            from harness.models.text import token_ids_model

            self.module = token_ids_model(self.module).eval()
        split = ctx.split
        # rows with a missing value are not explained: captum's perturbations of NaN stay NaN (images
        # decoded from files have none)
        candidates = np.arange(len(split)) if split.streamed else np.flatnonzero(
            ~torch.isnan(split.inputs.reshape(len(split), -1)).any(1).numpy()
        )  # fmt: skip
        picked = stats.subset_indices(len(candidates), params.examples, ctx.seed)  # resolved by Metric.resolve
        self.index = candidates if picked is None else candidates[np.sort(picked)]
        self.baseline_kind = params.baseline or BASELINES[self.modality][0]
        if self.modality == "text":  # token ids; the baseline pads every token but the special ones
            text = self.module.text
            self.x = text.tokenize(split.inputs[self.index])["input_ids"]
            special = torch.isin(self.x, torch.as_tensor(sorted(text.special_ids), device=self.x.device))
            self.baselines = torch.where(special, self.x, torch.full_like(self.x, text.pad_id))
        else:
            self.x = split.take(self.index, workers=ctx.workers, device=self.device).float()
        self.targets = self._logits(self.x).argmax(1)
        if self.modality == "image":
            self.baselines = baselines.image_baseline(self.baseline_kind, self.x)
            self.scale = torch.ones_like(self.x[:1])  # noise in pixel units
        elif self.modality == "tabular":
            self.baselines = baselines.tabular_baseline(self.task).to(self.device).expand_as(self.x).clone()
            self.scale = self._feature_spread()
        self.settings = Settings(params.ig_steps, params.shap_samples, params.shap_stdev, params.occlusion_window,
                                 params.occlusion_stride, params.shapley_samples, params.batch_size)  # fmt: skip

    # model outputs -----------------------------------------------------------------------------------
    def _logits(self, z: torch.Tensor) -> torch.Tensor:
        import torch

        with torch.no_grad():  # not inference mode: the targets drawn from these go into autograd
            return torch.cat([self.module(z[i : i + self.params.batch_size])
                              for i in range(0, len(z), self.params.batch_size)])  # fmt: skip

    def _class_scores(self, probability: bool):
        def score(z: torch.Tensor) -> np.ndarray:
            out = self._logits(z)
            out = out.softmax(1) if probability else out
            return out.gather(1, self.targets[:, None])[:, 0].float().cpu().numpy()

        return score

    def _feature_spread(self) -> torch.Tensor:
        """Per-feature noise scale of tabular rows: each numeric feature's training std; 0 for the
        categorical codes (noise on a code is no category)."""
        import torch

        train = self.task.load("train").inputs
        n_numeric = len(self.task.schema.numeric)  # type: ignore[attr-defined]
        spread = torch.zeros(1, train.shape[1])
        spread[0, :n_numeric] = torch.from_numpy(np.nanstd(train[:, :n_numeric].numpy(), axis=0))
        return spread.to(self.device)

    # explanations -------------------------------------------------------------------------------------
    @contextmanager
    def _seeded(self, salt: int) -> Iterator[None]:
        """The methods and metrics that draw from torch's global generator, seeded; its state is
        restored afterwards."""
        import torch

        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.ctx.seed * 1000 + salt)
            yield

    def _explain_all(self, method: Method, explain: Explain, rows: slice | None = None) -> torch.Tensor:
        import torch

        x, t, b = (self.x, self.targets, self.baselines) if rows is None else (
            self.x[rows], self.targets[rows], self.baselines[rows])  # fmt: skip
        n = method.chunk(self.settings)
        return torch.cat([explain(x[i : i + n], target=t[i : i + n], baselines=b[i : i + n])
                          for i in range(0, len(x), n)])  # fmt: skip

    def _captum_scores(self, method: Method, explain: Explain, attributions: torch.Tensor, salt: int):
        import torch
        from captum.metrics import infidelity, sensitivity_max

        p = self.params
        generator = torch.Generator(device=self.device).manual_seed(self.ctx.seed * 1000 + salt)
        low, high = self.task.bounds if self.modality == "image" else (None, None)

        def perturb_infidelity(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            noise = torch.randn(inputs.shape, generator=generator, device=inputs.device) * p.infidelity_noise
            noise = noise * self.scale
            return noise, inputs - noise

        def perturb_sensitivity(inputs: torch.Tensor, radius: float) -> torch.Tensor:
            packed = isinstance(inputs, tuple)
            x = inputs[0] if packed else inputs
            noise = (torch.rand(x.shape, generator=generator, device=x.device) * 2 - 1) * radius * self.scale
            moved = x + noise if low is None else (x + noise).clamp(low, high)
            return (moved,) if packed else moved

        infid, sens = [], []
        n = max(1, method.chunk(self.settings) // max(p.infidelity_samples, p.sensitivity_samples))
        for i in range(0, len(self.x), n):
            x, t = self.x[i : i + n], self.targets[i : i + n]
            b, a = self.baselines[i : i + n], attributions[i : i + n]
            infid.append(infidelity(self.module, perturb_infidelity, x, a, target=t, normalize=True,
                                    n_perturb_samples=p.infidelity_samples,
                                    max_examples_per_batch=len(x) * p.infidelity_samples))  # fmt: skip
            samples = p.sensitivity_samples
            with self._seeded(salt):
                sens.append(sensitivity_max(explain, x, perturb_func=perturb_sensitivity, target=t, baselines=b,
                                            perturb_radius=p.sensitivity_radius, n_perturb_samples=samples,
                                            max_examples_per_batch=len(x) * samples))  # fmt: skip
        return torch.cat(infid).float().cpu().numpy(), torch.cat(sens).float().cpu().numpy()

    # records --------------------------------------------------------------------------------------------
    def _mean(self, values: np.ndarray) -> tuple[stats.Estimate, int]:
        finite = values[np.isfinite(values)]
        undefined = len(values) - len(finite)
        if len(finite) < 2:
            return stats.Estimate(float("nan"), float("nan"), float("nan"), len(finite)), undefined
        return stats.mean(finite, **self.ctx.bootstrap_options), undefined

    def records(self) -> list[Record]:
        import pandas as pd

        from harness.explain import scores as S

        ctx, p = self.ctx, self.params
        out: list[Record] = []
        outputs: dict[str, Any] = {"example": ctx.split.attributes["index"].to_numpy()[self.index],
                                   "target": self.targets.cpu().numpy()}  # fmt: skip
        maps: dict[str, np.ndarray] = {}
        importance: dict[str, dict[str, float]] = {}
        names = method_names(self.task, p)
        for salt, name in enumerate(names, start=1):
            ctx.stage(f"explain {name}", salt - 1, len(names))
            method = explainers.get(name)
            explain = method.build(self.module, self.settings)
            with self._seeded(salt):
                attributions = self._explain_all(method, explain)
            feature = S.feature_scores(attributions)
            rng = np.random.default_rng([ctx.seed, salt])
            deletion, insertion = S.deletion_insertion(self._class_scores(True), self.x, self.baselines, feature,
                                                       steps=p.deletion_steps, rng=rng)  # fmt: skip
            subset = max(2, round(p.subset_fraction * feature.shape[1]))  # one feature: what ablation measures
            correlation = S.faithfulness_correlation(self._class_scores(False), self.x, self.baselines, feature,
                                                     subset=subset, runs=p.correlation_runs, rng=rng)  # fmt: skip
            per_example = {
                "deletion_auc": deletion,
                "insertion_auc": insertion,
                "faithfulness_correlation": correlation,
            }
            if self.modality != "text":  # both perturb inputs with noise: token ids have no neighbourhood
                infid, sens = self._captum_scores(method, explain, attributions, salt)
                per_example |= {"infidelity": infid, "sensitivity_max": sens}
            per_example["sparseness"] = S.sparseness(feature)
            cascade, passed = self._randomisation(method, feature, salt)
            # undefined (None): under 3 informative features per example, or a model without parameters
            flags = (UNDEFINED,) if passed is None else () if passed else (FAILS,)
            settings = {"baseline": self.baseline_kind, "target": "predicted class", "examples": len(self.index)}
            where = {"method": name}
            for score, values in per_example.items():
                estimate, undefined = self._mean(values)
                extra = ("undefined-for-all-examples",) if estimate.n < 2 else ()
                out.append(
                    ctx.record(
                        f"interpretability.{score}",
                        estimate,
                        slice=where,
                        params={**settings, "undefined": undefined},
                        flags=flags + extra,
                    )
                )
                outputs[f"{name}/{score}"] = values
            for label, rho, absolute in cascade:
                estimate, undefined = self._mean(rho)
                info = {
                    "examples": len(rho),
                    "undefined": undefined,
                    "statistic": "Spearman of the attributions where the input differs from the baseline",
                    "absolute": float(np.nanmean(absolute)) if np.isfinite(absolute).any() else None,
                }
                out.append(
                    ctx.record(
                        "interpretability.randomisation_correlation",
                        estimate,
                        slice={**where, "randomised": label},
                        params=info,
                        flags=flags,
                    )
                )
            final = cascade[-1][1] if cascade else np.array([])
            if passed is not None:
                verdict = {"threshold": p.randomisation_threshold, "final_correlation": float(np.nanmean(final))}
                out.append(
                    ctx.record(
                        "interpretability.randomisation_pass",
                        stats.exact(float(passed), len(final)),
                        slice=where,
                        params=verdict,
                        flags=flags,
                    )
                )
            if self.modality != "image":
                out += self._group_gaps(name, {"deletion_auc": deletion, "faithfulness_correlation": correlation},
                                        flags)  # fmt: skip
            if self.modality == "tabular":
                importance[name] = self._importance(name, feature, flags, out)
            elif self.modality == "image":
                maps[name] = feature[: p.grid_examples].reshape(-1, *self.x.shape[2:])
        ctx.stage("explained", len(names), len(names))
        ctx.outputs["interpretability"] = pd.DataFrame(outputs)
        self._figures(maps, importance)
        return out

    def _randomisation(self, method: Method, feature: np.ndarray, salt: int) -> tuple[list, bool | None]:
        from harness.explain import scores as S

        p = self.params
        rows = slice(0, min(p.randomisation_examples or RANDOMISATION_EXAMPLES[self.modality], len(self.x)))
        trained = feature[rows]
        informative = S.differs(self.x[rows], self.baselines[rows])
        cascade: list = []
        if not S.parameter_layers(self.module):  # nothing to randomise (a model without parameters)
            return cascade, None
        for label, randomised in S.randomised_cascade(self.module, p.randomisation_steps, self.ctx.seed):
            with self._seeded(salt):
                attributions = self._explain_all(method, method.build(randomised, self.settings), rows)
            scores = S.feature_scores(attributions)
            signed = S.spearman_rows(trained, scores, informative)
            absolute = S.spearman_rows(np.abs(trained), np.abs(scores), informative)
            cascade.append((label, signed, absolute))
        final = cascade[-1][1]
        if not np.isfinite(final).any():
            return cascade, None
        passed = bool(np.nanmean(final) < p.randomisation_threshold)
        return cascade, passed

    def _importance(self, name: str, feature: np.ndarray, flags: tuple[str, ...], out: list[Record]) -> dict:
        columns = self.task.schema.columns  # type: ignore[attr-defined]
        importance = {}
        for j, column in enumerate(columns):
            estimate = stats.mean(np.abs(feature[:, j]), **self.ctx.bootstrap_options)
            importance[column] = estimate.value
            out.append(
                self.ctx.record(
                    "interpretability.feature_importance",
                    estimate,
                    slice={"method": name, "feature": column},
                    params={"statistic": "mean absolute attribution", "descriptive": True},
                    flags=flags,
                )
            )
        return importance

    def _group_gaps(self, name: str, scores: dict[str, np.ndarray], flags: tuple[str, ...]) -> list[Record]:
        """Explanation quality per group of each sensitive feature, and the largest gap between groups
        (bootstrap over the explained rows; a group absent from a resample does not count in it)."""
        attributes = self.ctx.split.attributes.iloc[self.index].reset_index(drop=True)
        out = []
        for feature in self.task.sensitive:
            groups = attributes[feature].astype(str).to_numpy()
            labels = [g for g in sorted(set(groups)) if (groups == g).sum() >= 2]
            if len(labels) < 2:
                continue
            for score, values in scores.items():
                finite = np.isfinite(values)
                if finite.sum() < 2:  # undefined for (almost) every explained row: no gap to estimate
                    continue
                for g in labels:
                    estimate, undefined = self._mean(values[groups == g])
                    out.append(
                        self.ctx.record(
                            f"interpretability.{score}",
                            estimate,
                            slice={"method": name, "feature": feature, "group": g},
                            params={"undefined": undefined},
                            flags=flags,
                        )
                    )
                codes = np.array([labels.index(g) if g in labels else -1 for g in groups[finite]])
                value, low, high = largest_mean_gap(values[finite], codes, len(labels))
                estimate = between_estimate(value, low, high, int(finite.sum()), "welch")
                info = {"groups": labels, "statistic": "largest minus smallest group mean"}
                out.append(
                    self.ctx.record(
                        f"interpretability.{score}_gap",
                        estimate,
                        slice={"method": name, "feature": feature},
                        params=info,
                        flags=flags,
                    )
                )
        return out

    def _figures(self, maps: dict[str, np.ndarray], importance: dict[str, dict[str, float]]) -> None:
        from harness.figures import attribution_grid, importance_bars

        model, task = self.ctx.model.name, self.task.name
        if maps:
            shown = min(self.params.grid_examples, len(self.x))
            labels = [self.task.classes[int(k)] for k in self.targets[:shown].cpu()]
            self.ctx.figures["attributions"] = attribution_grid(
                self.x[:shown].cpu().numpy(), np.stack([maps[m][:shown] for m in maps], 1), labels, list(maps),
                title=f"{model} on {task}: attributions for the predicted class ({self.baseline_kind} baseline)",
            )  # fmt: skip
        if importance:
            self.ctx.figures["feature-importance"] = importance_bars(
                importance, title=f"{model} on {task}: global feature importance"
            )
