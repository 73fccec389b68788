"""Adversarial robustness: robust accuracy per attack and epsilon, the per-example worst case over
attacks (as AutoAttack reports it), median smallest perturbations, and the sanity flags."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness import stats
from harness.measures import Measure
from harness.metrics.base import Metric, costly_subset
from harness.registry import attacks, metrics, unknown_name_message

if TYPE_CHECKING:
    from harness.context import EvalContext
    from harness.records import Record

WHITE_BOX = ("fgsm", "pgd-linf", "pgd-l2", "deepfool-linf", "deepfool-l2", "cw-l2", "fmn-linf")


class AdversarialParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    attacks: tuple[str, ...] = Field((*WHITE_BOX, "hopskipjump"), description="registered attack names")
    linf_eps: tuple[float, ...] = (0.01, 0.03, 0.05, 0.1, 0.2)
    l2_eps: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
    examples: int | None = Field(
        None, ge=1, description="seeded subset of the evaluated examples (default: 1,000, or all under --limit)"
    )
    blackbox_examples: int = Field(100, ge=1, description="subset (of the above) for the black-box attack")
    pgd_steps: int = Field(20, ge=1)
    restarts: int = Field(1, ge=1, description="PGD runs from independent random starts")
    minimal_steps: int = Field(50, ge=1, description="steps of DeepFool, C&W and FMN")
    cw_binary_steps: int = Field(3, ge=1)
    blackbox_steps: int = Field(10, ge=1)
    blackbox_queries: int = Field(500, ge=10, description="most gradient-estimation queries per HopSkipJump step")
    sanity_eps: float = Field(0.5, gt=0, description="Linf epsilon at which PGD must break any model")
    batch_size: int = Field(250, ge=1)

    @field_validator("attacks")
    @classmethod
    def _known(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if name not in attacks.names():
                raise ValueError(unknown_name_message("attack", name, attacks.names()))
        return names


def eps_label(eps: float) -> str:
    return f"{eps:g}"


@metrics.register("adversarial", "robust accuracy under foolbox attacks (Linf, L2), worst case, sanity flags")
class Adversarial(Metric):
    name = "adversarial"
    version = 2
    category = "robustness"
    measures = (
        Measure("adversarial.clean_accuracy", "higher", "robustness", ("attack",), ("adversarial", "correct"),
                fixed={"attack": "none"}, percent=True),
        Measure("adversarial.robust_accuracy", "higher", "robustness", ("attack",), ("adversarial", "robust_{attack}"),
                key_slices={"attack": "worst-*"}, percent=True),
        Measure("adversarial.median_min_perturbation", "higher", "robustness", ("attack",)),
    )  # fmt: skip
    modalities = frozenset({"image"})
    needs = frozenset({"clean", "gradients"})
    Params: type[BaseModel] = AdversarialParams

    def compute(self, ctx: EvalContext, params: BaseModel) -> list[Record]:
        from harness.attacks.adversarial import run_attack
        from harness.attacks.sanity import model_flags, monotone, result_flags

        assert isinstance(params, AdversarialParams)
        if ctx.task.bounds is None:
            raise ValueError(f"adversarial attacks need an image task with declared bounds; {ctx.task.name} has none")
        picked = costly_subset(ctx, params.examples)
        module = ctx.model.to(ctx.device).module
        inputs = ctx.split.inputs[picked].to(ctx.device)
        labels = ctx.split.labels[picked].to(ctx.device)
        correct = ctx.clean.correct[picked]
        budget = params.model_dump()
        grids = {"linf": list(params.linf_eps), "l2": list(params.l2_eps)}

        flags = model_flags(module, inputs[:64], labels[:64])
        outcomes = {}
        for done, name in enumerate(params.attacks):
            ctx.stage(name, done, len(params.attacks))
            attack = attacks.get(name)
            examples = params.blackbox_examples if attack.kind == "blackbox" else len(picked)
            outcomes[name] = run_attack(
                attack, module, inputs[:examples], labels[:examples], correct[:examples],
                bounds=ctx.task.bounds, epsilons=grids[attack.norm], budget=budget, seed=ctx.seed,
                batch_size=params.batch_size,
            )  # fmt: skip
        ctx.stage("done", len(params.attacks), len(params.attacks))

        rows: list[tuple[str, str, np.ndarray]] = []  # (metric, slice, robust per example)
        columns: dict[str, np.ndarray] = {
            "example": ctx.split.attributes["index"].to_numpy()[picked],
            "correct": correct,
        }
        worst: dict[str, dict[float, np.ndarray]] = {}
        for name, outcome in outcomes.items():
            attack = outcome.attack
            n = len(outcome.norms) if outcome.norms is not None else len(picked)
            per_eps = monotone({eps: outcome.robust_at(eps, correct[:n]) for eps in grids[attack.norm]})
            for eps, robust in per_eps.items():
                rows.append(("adversarial.robust_accuracy", f"attack={name}@{eps_label(eps)}", robust))
                if attack.kind != "blackbox":
                    columns[f"robust_{name}@{eps_label(eps)}"] = robust
                    cell = worst.setdefault(attack.norm, {})
                    cell[eps] = cell[eps] & robust if eps in cell else robust
            if outcome.norms is not None and attack.kind != "blackbox":
                columns[f"norm_{name}"] = outcome.norms
        worst = {norm: monotone(cells) for norm, cells in worst.items()}
        for norm, cells in worst.items():
            for eps, robust in cells.items():
                rows.append(("adversarial.robust_accuracy", f"attack=worst-{norm}@{eps_label(eps)}", robust))
                columns[f"robust_worst-{norm}@{eps_label(eps)}"] = robust

        blackbox_gap = self._blackbox_gap(outcomes, worst, grids, correct)
        large_eps = self._large_eps_accuracy(module, inputs, labels, correct, params, ctx)
        clean_accuracy = float(correct.mean())
        flags += result_flags(
            clean_accuracy,
            {s: float(r.mean()) for _, s, r in rows if not s.startswith("attack=hopskipjump")},
            blackbox_gap=blackbox_gap,
            large_eps_accuracy=large_eps,
            chance=1 / ctx.task.num_classes,
        )
        flags_t = tuple(dict.fromkeys(flags))
        opts = ctx.bootstrap_options
        record_params = {k: v for k, v in budget.items() if k != "batch_size"}
        out = [
            ctx.record(
                "adversarial.clean_accuracy",
                stats.proportion(correct, **opts),
                slice="attack=none",
                params=record_params,
                flags=flags_t,
            )
        ]
        for metric, slice_, robust in rows:
            estimate = stats.proportion(robust, **opts)
            out.append(ctx.record(metric, estimate, slice=slice_, params=record_params, flags=flags_t))
        for name, outcome in outcomes.items():
            if outcome.norms is None or outcome.attack.kind == "blackbox":
                continue
            norms = outcome.norms[correct]
            if len(norms):
                estimate = stats.bootstrap(lambda rows, v=norms: np.median(v[rows], axis=1), len(norms), **opts)
                out.append(
                    ctx.record(
                        "adversarial.median_min_perturbation",
                        estimate,
                        slice=f"attack={name}",
                        params=record_params,
                        flags=flags_t,
                    )
                )
        ctx.outputs["adversarial"] = pd.DataFrame(columns)
        return out

    @staticmethod
    def _blackbox_gap(
        outcomes: dict[str, Any], worst: dict[str, dict[float, np.ndarray]], grids, correct
    ) -> float | None:
        gaps = []
        for outcome in outcomes.values():
            if outcome.attack.kind != "blackbox" or outcome.attack.norm not in worst:
                continue
            n = len(outcome.norms)
            for eps in grids[outcome.attack.norm]:
                white = worst[outcome.attack.norm][eps][:n].mean()
                black = outcome.robust_at(eps, correct[:n]).mean()
                gaps.append(float(white - black))
        return max(gaps) if gaps else None

    @staticmethod
    def _large_eps_accuracy(module, inputs, labels, correct, params, ctx) -> float:
        """PGD at a huge Linf epsilon (default 0.5: every image can become uniform grey) on up to 200
        examples: a model that keeps its accuracy there has not been attacked properly."""
        from harness.attacks.adversarial import run_attack

        n = min(200, len(labels))
        outcome = run_attack(
            attacks.get("pgd-linf"), module, inputs[:n], labels[:n], correct[:n], bounds=ctx.task.bounds,
            epsilons=[params.sanity_eps], budget=params.model_dump(), seed=ctx.seed, batch_size=params.batch_size,
        )  # fmt: skip
        return float(outcome.robust[params.sanity_eps].mean())
