"""Adversarial robustness: robust accuracy per attack and epsilon, the per-example worst case over
attacks (as AutoAttack reports it), median smallest perturbations, and the sanity flags."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness import stats
from harness.files import source_digest
from harness.measures import Measure
from harness.metrics.base import Metric, costly_subset
from harness.registry import attacks, metrics, unknown_name_message

if TYPE_CHECKING:
    from harness.context import EvalContext
    from harness.records import Record
    from harness.tasks.base import Task

DEFAULT_ATTACKS = ("autoattack-linf", "autoattack-l2", "fmn-linf", "deepfool-l2", "hopskipjump")


class AdversarialParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    attacks: tuple[str, ...] = Field(DEFAULT_ATTACKS, description="registered attack names")
    linf_eps: tuple[float, ...] = (0.01, 0.03, 0.05, 0.1, 0.2)
    l2_eps: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
    examples: int | None = Field(
        None, ge=1, description="seeded subset of the evaluated examples (default: 1,000, or all under --limit)"
    )
    protocol: Literal["auto", "standard", "rand"] = Field(
        "auto", description="AutoAttack version: auto is rand for a randomized forward pass, else standard"
    )
    apgd_steps: int = Field(100, ge=1, description="iterations of APGD (AutoAttack: 100)")
    target_classes: int = Field(9, ge=1, description="target classes of APGD-T and FAB-T (AutoAttack: 9)")
    fab_steps: int = Field(100, ge=1, description="iterations of FAB-T per target class (AutoAttack: 100)")
    square_queries: int = Field(5000, ge=1, description="queries of Square (AutoAttack: 5,000)")
    eot_iterations: int = Field(20, ge=1, description="forward passes averaged per gradient, rand version")
    blackbox_examples: int = Field(100, ge=1, description="subset (of the above) for the black-box attack")
    pgd_steps: int = Field(20, ge=1)
    restarts: int = Field(1, ge=1, description="PGD runs from independent random starts")
    minimal_steps: int = Field(100, ge=1, description="steps of DeepFool, C&W and FMN")
    cw_binary_steps: int = Field(9, ge=1)
    cw_initial_const: float = Field(1.0, gt=0, description="C&W's first trade-off constant")
    cw_stepsize: float = Field(0.01, gt=0)
    blackbox_steps: int = Field(10, ge=1)
    blackbox_queries: int = Field(500, ge=10, description="most gradient-estimation queries per HopSkipJump step")
    sanity_eps: float = Field(0.5, gt=0, description="Linf epsilon at which PGD must break any model")
    active_tests: int = Field(
        20, ge=0, description="binarization tests per norm at the grid's middle epsilon (0: none)"
    )
    active_inner_points: int = Field(999, ge=10)
    batch_size: int = Field(250, ge=1)

    @field_validator("attacks")
    @classmethod
    def _known(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if name not in attacks.names():
                raise ValueError(unknown_name_message("attack", name, attacks.names()))
        return names


ATTACK_CODE = ("adversarial.py", "apgd.py", "fab.py", "square.py", "autoattack.py", "active.py", "sanity.py")


@cache
def attack_code() -> str:
    """The hash of the harness's attack code: editing an attack changes its figures, so it joins the spec."""
    import harness.attacks

    folder = Path(harness.attacks.__file__).parent
    return source_digest([folder / name for name in ATTACK_CODE])


def protocol_name(version: str, eot: int) -> str:
    """How a record names the AutoAttack version that produced it."""
    return "AutoAttack standard" if version == "standard" else f"AutoAttack rand (EoT {eot})"


def eps_label(eps: float) -> str:
    return f"{eps:g}"


@metrics.register("adversarial", "robust accuracy under AutoAttack and other attacks (Linf, L2), sanity flags")
class Adversarial(Metric):
    name = "adversarial"
    version = 3
    category = "robustness"
    measures = (
        Measure("adversarial.clean_accuracy", "higher", "robustness", ("attack",), ("adversarial", "correct"),
                fixed={"attack": "none"}, percent=True),
        Measure("adversarial.robust_accuracy", "higher", "robustness", ("attack",), ("adversarial", "robust_{attack}"),
                key_slices={"attack": "worst-*"}, percent=True),
        Measure("adversarial.median_min_perturbation", "higher", "robustness", ("attack",)),
        Measure("adversarial.active_test_pass_rate", "higher", "robustness", ("attack",), percent=True),
    )  # fmt: skip
    modalities = frozenset({"image"})
    needs = frozenset({"clean", "gradients"})
    Params: type[BaseModel] = AdversarialParams

    def depends(self, params: BaseModel, task: Task) -> dict[str, object]:
        """The version of the attack code (AutoAttack's stages, the cascade, the active test, the flags)."""
        return {"attack_code": attack_code()}

    def passes(self, params: BaseModel, n: int) -> int | None:
        """An upper bound: every example survives every attack at every epsilon. Attacks stop on an
        example once it is broken, so a model that is not robust costs a small fraction of it."""
        assert isinstance(params, AdversarialParams)
        p = params
        eps_count = {"linf": len(p.linf_eps), "l2": len(p.l2_eps)}
        per_eps = {
            "protocol": (p.apgd_steps + 1) * (1 + p.target_classes) + 2 * p.target_classes * p.fab_steps
            + p.square_queries,  # standard; rand: 2 APGD runs with EoT
            "fgsm": 1, "pgd": p.pgd_steps * p.restarts, "apgd-ce": p.apgd_steps + 1,
            "apgd-t": (p.apgd_steps + 1) * p.target_classes, "fab-t": 2 * p.target_classes * p.fab_steps,
            "square": p.square_queries,
        }  # fmt: skip
        rand = 2 * (p.apgd_steps + 1) * p.eot_iterations
        total = 0
        for name in p.attacks:
            attack = attacks.get(name)
            if attack.kind == "blackbox":
                total += p.blackbox_examples * p.blackbox_steps * (p.blackbox_queries + 50)
            elif attack.kind == "minimal" and attack.native:
                total += n * per_eps["fab-t"]
            elif attack.kind == "minimal":
                total += n * p.minimal_steps * (p.cw_binary_steps if name == "cw-l2" else 1)
            elif attack.kind == "protocol":
                total += n * eps_count[attack.norm] * max(per_eps["protocol"], rand if p.protocol != "standard" else 0)
            else:
                key = next((k for k in per_eps if name.startswith(k)), "pgd")
                total += n * eps_count[attack.norm] * per_eps[key]
        return total + min(200, n) * (p.apgd_steps + 1) + 2 * p.active_tests * p.active_inner_points

    def compute(self, ctx: EvalContext, params: BaseModel) -> list[Record]:
        import pandas as pd

        from harness.attacks.sanity import model_flags, monotone, result_flags

        assert isinstance(params, AdversarialParams)
        if ctx.task.bounds is None:
            raise ValueError(f"adversarial attacks need an image task with declared bounds; {ctx.task.name} has none")
        picked = costly_subset(ctx, params.examples)
        module = ctx.model.to(ctx.device).module
        inputs = ctx.split.take(picked, workers=ctx.workers, device=ctx.device)
        labels = ctx.split.labels[picked].to(ctx.device)
        correct = ctx.clean.correct[picked]
        grids = {"linf": sorted(params.linf_eps), "l2": sorted(params.l2_eps)}

        transfer = ctx.model.surrogate is not None
        if transfer:  # no gradients of its own: gradients from the float parent, outputs from the model
            from harness.variants.modules import GradientsFrom

            module = GradientsFrom(ctx.model.surrogate.eval(), module.eval())
        flags = model_flags(module, inputs[:64], labels[:64]) + (["transfer-from-parent"] if transfer else [])
        version = params.protocol
        if version == "auto":
            version = "rand" if "randomized-forward" in flags else "standard"
        if version == "rand":
            flags.append("autoattack-rand")
        budget = {**params.model_dump(), "protocol": version}
        outcomes = self._attack(ctx, params, budget, module, inputs, labels, correct, grids)

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
            for eps, by in (outcome.broken_by or {}).items():
                columns[f"broken_by_{name}@{eps_label(eps)}"] = by.astype(str)
            if outcome.norms is not None and attack.kind != "blackbox":
                columns[f"norm_{name}"] = outcome.norms
        worst = {norm: monotone(cells) for norm, cells in worst.items()}
        for norm, cells in worst.items():
            for eps, robust in cells.items():
                rows.append(("adversarial.robust_accuracy", f"attack=worst-{norm}@{eps_label(eps)}", robust))
                columns[f"robust_worst-{norm}@{eps_label(eps)}"] = robust

        blackbox_gap = self._blackbox_gap(outcomes, worst, grids, correct)
        large_eps = self._large_eps_accuracy(module, inputs, labels, correct, params, ctx)
        active = self._active_tests(ctx, params, budget, module, inputs, correct, grids, worst)
        clean_accuracy = float(correct.mean())
        flags += result_flags(
            clean_accuracy,
            {s: float(r.mean()) for _, s, r in rows if not s.startswith("attack=hopskipjump")},
            blackbox_gap=blackbox_gap,
            large_eps_accuracy=large_eps,
            chance=1 / ctx.task.num_classes,
            active_pass_rates=[passed.mean() for _, passed in active.values() if len(passed)],
        )
        flags_t = tuple(dict.fromkeys(flags))
        opts = ctx.bootstrap_options
        record_params = {k: v for k, v in budget.items() if k != "batch_size"}
        record_params["protocol"] = protocol_name(version, params.eot_iterations)
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
        for slice_, (_, passed) in active.items():
            if len(passed):
                out.append(ctx.record("adversarial.active_test_pass_rate", stats.proportion(passed, **opts),
                                      slice=slice_, params=record_params, flags=flags_t))  # fmt: skip
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
    def _attack(ctx, params, budget, module, inputs, labels, correct, grids) -> dict[str, Any]:
        """Every attack of the list: minimum-norm ones first, since their smallest perturbations tell the
        AutoAttack cascade which examples are already broken at each epsilon; the black-box check last."""
        from harness.attacks.adversarial import run_attack

        chosen = [attacks.get(name) for name in params.attacks]
        order = {"minimal": 0, "fixed": 1, "protocol": 1, "blackbox": 2}
        chosen.sort(key=lambda attack: order[attack.kind])
        broken: dict[str, dict[float, np.ndarray]] = {}  # norm -> eps -> broken by a minimum-norm attack
        outcomes = {}
        for done, attack in enumerate(chosen):
            ctx.stage(attack.name, done, len(chosen))
            examples = params.blackbox_examples if attack.kind == "blackbox" else len(inputs)
            outcome = run_attack(
                attack, module, inputs[:examples], labels[:examples], correct[:examples],
                bounds=ctx.task.bounds, epsilons=grids[attack.norm], budget=budget, seed=ctx.seed,
                batch_size=params.batch_size, broken=broken.get(attack.norm) if attack.kind == "protocol" else None,
                report=lambda text, name=attack.name, done=done: ctx.stage(f"{name}: {text}", done, len(chosen)),
            )  # fmt: skip
            if attack.kind == "minimal":
                cells = broken.setdefault(attack.norm, {})
                for eps in grids[attack.norm]:
                    hit = correct & ~(outcome.norms > eps)
                    cells[eps] = cells[eps] | hit if eps in cells else hit
            outcomes[attack.name] = outcome
        ctx.stage("done", len(chosen), len(chosen))
        return {name: outcomes[name] for name in params.attacks}

    @staticmethod
    def _active_tests(ctx, params, budget, module, inputs, correct, grids, worst) -> dict[str, tuple[float, Any]]:
        """Binarization tests of each norm's white-box attacks together, at the grid's middle epsilon, on
        the first ``active_tests`` correctly classified examples: slice -> (eps, passed per valid test)."""
        from harness.attacks.active import binarization_tests, last_linear
        from harness.attacks.adversarial import run_attack
        from harness.variants.modules import GradientsFrom

        if isinstance(module, GradientsFrom):  # int8 kernels: the attacks follow the float parent, so do the tests
            module = module.surrogate
        if params.active_tests == 0 or last_linear(module) is None:
            return {}
        out = {}
        rows = np.flatnonzero(correct)[: params.active_tests]
        for norm in worst:
            eps = grids[norm][len(grids[norm]) // 2]
            chosen = [attacks.get(n) for n in params.attacks]
            chosen = [a for a in chosen if a.norm == norm and a.kind != "blackbox"]

            def attack(test_model, x, y, chosen=chosen, eps=eps) -> bool:
                ok = np.ones(1, dtype=bool)
                for a in chosen:
                    outcome = run_attack(a, test_model, x, y, ok, bounds=ctx.task.bounds, epsilons=[eps],
                                         budget=budget, seed=ctx.seed, batch_size=1)  # fmt: skip
                    if not outcome.robust_at(eps, ok)[0]:
                        return True
                return False

            ctx.stage(f"active tests {norm} {eps:g}", 0, 1)
            passed = binarization_tests(module, inputs[rows], eps=eps, norm=norm, bounds=ctx.task.bounds,
                                        attack=attack, inner=params.active_inner_points, seed=ctx.seed)  # fmt: skip
            out[f"attack=worst-{norm}@{eps_label(eps)}"] = (eps, np.asarray(passed, dtype=bool))
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
        """APGD-CE at a huge Linf epsilon (default 0.5: every image can become uniform grey) on up to 200
        examples: a model that keeps its accuracy there has not been attacked properly."""
        from harness.attacks.adversarial import run_attack

        n = min(200, len(labels))
        outcome = run_attack(
            attacks.get("apgd-ce-linf"), module, inputs[:n], labels[:n], correct[:n], bounds=ctx.task.bounds,
            epsilons=[params.sanity_eps], budget=params.model_dump(), seed=ctx.seed, batch_size=params.batch_size,
        )  # fmt: skip
        return float(outcome.robust[params.sanity_eps].mean())
