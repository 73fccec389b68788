"""Membership inference: can an attacker tell the model's training records from records it never
saw? Members are a seeded sample of the training split (the shipped sample where the task has one),
non-members a seeded sample of records the model never trained on: the evaluated split and, where the
task holds one out, its validation split (Fashion-MNIST's 5,000 validation images, Adult's 3,256 rows).
Up to 10,000 non-members by default, so that the TPR at 0.1% FPR, the figure the field reports since
LiRA, can be estimated (at least ``MIN_FALSE_POSITIVES`` non-members let through); members and
non-members need not be as many. Each privacy attack scores every record (``harness.privacy.attacks``:
higher means more likely a member) and its threshold is swept. A validation record's example id is
its index there plus the evaluated split's size, so that ids stay unique.

Figures per attack (``harness.metrics.curves``; members are the positive class): AUC, balanced
accuracy (the best threshold's (TPR + TNR) / 2), and the TPR at 1%, 0.1% and 0% FPR (Carlini et al.
2022: an attack that identifies a few records with confidence matters more than its average), each
with a stratified bootstrap interval. A TPR at an FPR that allows fewer than ``MIN_FALSE_POSITIVES``
non-members through cannot be estimated from this many non-members: its record is NaN and flagged.
The AUC is also given per class and per group of each sensitive attribute (which records leak more).
Per-example scores are stored (kind ``membership``) for paired comparisons of variants and mitigations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from harness import stats
from harness.measures import Measure
from harness.metrics.base import Metric
from harness.metrics.curves import detection, stratified, tpr_at_fpr
from harness.metrics.ood import outputs_of
from harness.privacy import get_attack
from harness.registry import metrics, privacy_attacks

if TYPE_CHECKING:
    from harness.context import EvalContext
    from harness.records import Record
    from harness.tasks.base import Split, Task

FPRS = (0.01, 0.001, 0.0)
MIN_FALSE_POSITIVES = 10  # below this many non-members allowed through, a TPR at that FPR is not estimated
THREAT_MODEL = ("black-box: the attacker sees the model's probabilities for a record and knows its label; "
                "the threshold attacks know nothing more; lira-offline also knows the training recipe and holds "
                "records of the same distribution, none of them attacked, to train reference models on; members "
                "and non-members drawn apart (their numbers in each record's params)")  # fmt: skip


class MembershipParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    attacks: tuple[str, ...] = ("loss", "confidence", "entropy", "modified-entropy", "lira-offline")
    reference_models: int = Field(4, ge=2, description="K reference models of the attacks that need them")
    reference_recipe: str | None = Field(
        None, description="the zoo entry whose recipe trains them (default: the model's own; needed outside the zoo)"
    )
    examples: int | None = Field(5000, ge=10, description="members (at most the training split's records)")
    non_members: int | None = Field(10_000, ge=10, description="non-members, from the evaluated and the validation "
                                    "split: 10,000 let the TPR at 0.1% FPR be estimated")  # fmt: skip
    max_groups: int = Field(20, ge=2, description="attributes with more distinct values are not split by")


def membership_figures(members: np.ndarray, others: np.ndarray, *, resamples: int = 1000,
                       seed: int = 0) -> dict[str, stats.Estimate]:  # fmt: skip
    """AUC, balanced accuracy and the TPR at each of ``FPRS`` (keys ``auc``, ``balanced_accuracy``,
    ``tpr@<fpr>``) with stratified percentile bootstrap intervals (members and non-members resampled
    apart); a TPR whose FPR lets fewer than ``MIN_FALSE_POSITIVES`` non-members through is NaN."""

    def figures(rows_pos: np.ndarray, rows_neg: np.ndarray) -> dict[str, np.ndarray]:
        found = detection(members, others, rows_pos, rows_neg)
        out = {"auc": found["auroc"], "balanced_accuracy": found["detection_accuracy"]}
        for fpr in FPRS:
            out[f"tpr@{fpr}"] = tpr_at_fpr(members, others, rows_pos, rows_neg, fpr)
        return out

    n_pos, n_neg = len(members), len(others)
    out = stratified(figures, n_pos, n_neg, resamples=resamples, seed=seed)
    for fpr in FPRS:
        if 0 < fpr * n_neg < MIN_FALSE_POSITIVES:
            out[f"tpr@{fpr}"] = stats.Estimate(float("nan"), float("nan"), float("nan"), n_pos + n_neg, "percentile")
    return out


@metrics.register("membership", "membership inference: AUC and TPR at 1%, 0.1%, 0% FPR of threshold attacks")
class Membership(Metric):
    name = "membership"
    # 2: up to 10,000 non-members from the evaluated and the validation split (TPR at 0.1% FPR estimable)
    version = 2
    category = "privacy"
    Params = MembershipParams
    measures = (
        Measure("membership.auc", "lower", "privacy", ("attack", "class", "feature", "group"), percent=True,
                key_slices={"attack": "*"}),
        Measure("membership.balanced_accuracy", "lower", "privacy", ("attack",), percent=True),
        Measure("membership.tpr", "lower", "privacy", ("attack", "fpr"), percent=True,
                key_slices={"attack": "*", "fpr": "0.001"}),
    )  # fmt: skip

    def default_examples(self, task: Task) -> int | None:
        return None

    def resolve(self, params: BaseModel, task: Task, *, n: int, cut: bool) -> BaseModel:
        return params

    def evaluated(self, params: BaseModel, n: int, seed: int) -> np.ndarray | None:
        return None  # it draws its own non-members from the evaluated split, and members from the training one

    def check(self, task: Task, params: BaseModel) -> None:
        assert isinstance(params, MembershipParams)
        for name in params.attacks:
            if name not in privacy_attacks:
                raise ValueError(f"membership: unknown attack {name!r}; known: {', '.join(privacy_attacks.names())}")
        if task.training_split is None:
            raise ValueError(
                f"membership: task {task.name!r} has only the split {task.eval_split!r}; members come from the "
                "training split: give the task one (csv: the task option train=FILE; imagefolder: a train/ "
                "folder; hf: a dataset with a train split)"
            )

    def depends(self, params: BaseModel, task: Task) -> dict[str, Any]:
        split, held_out = task.training_split, held_out_split(task)
        return {"members_from": split, "members_fingerprint": task.load(split).fingerprint,
                "non_members_also_from": held_out,
                "held_out_fingerprint": None if held_out is None else task.load(held_out).fingerprint,
                "threat_model": THREAT_MODEL}  # fmt: skip

    def compute(self, ctx: EvalContext, params: BaseModel) -> list[Record]:
        import pandas as pd

        assert isinstance(params, MembershipParams)
        split_name = ctx.task.training_split
        training = ctx.task.load(split_name)
        if ctx.model.decoding is not None:
            training = training.redecoded(ctx.model.decoding) or training
        pool = non_member_pool(ctx, ctx.split)
        n = min(params.examples or len(training), len(training))
        n_out = min(params.non_members or len(pool), len(pool))
        member_rows, other_rows = seeded_rows(len(training), n, ctx.seed), seeded_rows(len(pool), n_out, ctx.seed + 1)
        members, others = training.subset(member_rows), pool.subset(other_rows)
        logits = {side: outputs_of(ctx, split, [], None, side).logits
                  for side, split in (("members", members), ("others", others))}  # fmt: skip
        labels = {"members": members.labels.numpy(), "others": others.labels.numpy()}
        chosen = [get_attack(name) for name in params.attacks]
        reference, why_not, about = None, "", {}
        if any(a.references for a in chosen):
            reference, why_not, about = self._references(ctx, params, training, member_rows, members, others)
        opts = ctx.bootstrap_options
        out: list[Record] = []
        frame = pd.DataFrame({"example": np.r_[members.attributes["index"], others.attributes["index"]],
                              "member": np.r_[np.ones(n, bool), np.zeros(n_out, bool)]})  # fmt: skip
        held_out = held_out_split(ctx.task)
        settings = {"members_from": split_name, "members": n, "non_members": n_out,
                    "non_members_from": [ctx.split.name] + ([held_out] if pool is not ctx.split else []),
                    "threat_model": THREAT_MODEL}  # fmt: skip
        for attack in chosen:
            name = attack.name
            if attack.references and reference is None:
                out.append(ctx.record("membership.auc", stats.Estimate(float("nan"), float("nan"), float("nan"),
                                                                       n + n_out, "percentile"),
                                      slice={"attack": name}, params=settings,
                                      flags=(f"skipped: no reference models: {why_not}",)))  # fmt: skip
                continue
            pos, neg = (attack.score(logits[s], labels[s], None if reference is None else reference[s])
                        for s in ("members", "others"))  # fmt: skip
            frame[name] = np.r_[pos, neg]
            kept = {**settings, **about} if attack.references else settings
            found = membership_figures(pos, neg, **opts)
            out.append(ctx.record("membership.auc", found["auc"], slice={"attack": name}, params=kept))
            out.append(ctx.record("membership.balanced_accuracy", found["balanced_accuracy"], slice={"attack": name},
                                  params=kept))  # fmt: skip
            for fpr in FPRS:
                estimate = found[f"tpr@{fpr}"]
                flags = ((f"too-few-non-members: FPR {fpr:g} of {n_out} lets {fpr * n_out:g} through",)
                         if np.isnan(estimate.value) else ())  # fmt: skip
                out.append(ctx.record("membership.tpr", estimate, slice={"attack": name, "fpr": str(fpr)},
                                      params=kept, flags=flags))  # fmt: skip
            out += self._by_slice(ctx, name, pos, neg, members, others, params, kept)
        ctx.outputs["membership"] = frame
        return out

    def _references(self, ctx: EvalContext, params: MembershipParams, training: Split, member_rows: np.ndarray,
                    members: Split, others: Split) -> tuple[dict[str, np.ndarray] | None, str, dict]:  # fmt: skip
        """The reference models' logits on the members and the non-members [K, n, k], trained (or read
        from the cache) on halves of the population: the training split's records that are not members
        and the evaluation split's that are not non-members. None, with the reason, where no recipe fits."""
        from harness.privacy.references import recipe_for, records_outside, reference_models
        from harness.variants.fitted import logits_of

        recipe, why_not = recipe_for(ctx.model, ctx.task, params.reference_recipe)
        if recipe is None:
            return None, why_not, {}
        population = records_outside(training, member_rows, non_member_pool(ctx, ctx.task.load()),
                                     others.attributes["index"].to_numpy())  # fmt: skip
        if len(population) < 2 * params.reference_models:
            return None, f"only {len(population)} records are left outside the attacked ones to train on", {}
        label = f"reference models (zoo:{recipe}, on halves of {len(population)} records)"
        modules = reference_models(recipe, population, params.reference_models, ctx.seed,
                                   lambda done, k: ctx.stage(f"{label}: {done}/{k}", done, k))  # fmt: skip
        logits = {side: np.stack([logits_of(m, split).numpy().astype(np.float64) for m in modules])
                  for side, split in (("members", members), ("others", others))}  # fmt: skip
        about = {"reference_recipe": f"zoo:{recipe}", "reference_models": params.reference_models,
                 "population": len(population), "reference_examples": len(population) // 2}  # fmt: skip
        return logits, "", about

    def _by_slice(self, ctx: EvalContext, name: str, pos: np.ndarray, neg: np.ndarray, members: Split,
                  others: Split, params: MembershipParams, settings: dict) -> list[Record]:  # fmt: skip
        """The AUC within each class and each group of each sensitive attribute, where both sides have records."""
        out = []
        columns: dict[str, tuple[np.ndarray, np.ndarray]] = {
            "class": (np.asarray(ctx.task.classes)[members.labels.numpy()],
                      np.asarray(ctx.task.classes)[others.labels.numpy()]),
        }  # fmt: skip
        for feature in ctx.task.sensitive:
            if feature in members.attributes and feature in others.attributes:
                a, b = (s.attributes[feature].astype(str).to_numpy() for s in (members, others))
                if len(set(a) | set(b)) <= params.max_groups:
                    columns[feature] = (a, b)
        for feature, (a, b) in columns.items():
            for group in sorted(set(a) & set(b)):
                found = membership_figures(pos[a == group], neg[b == group], **ctx.bootstrap_options)["auc"]
                where = {"attack": name, "class": group} if feature == "class" else {
                    "attack": name, "feature": feature, "group": group}  # fmt: skip
                out.append(ctx.record("membership.auc", found, slice=where, params=settings))
        return out


def held_out_split(task: Task) -> str | None:
    """The task's held-out validation split, where it has one apart from its training split: its records
    join the non-members (the model never trained on them)."""
    held_out = task.validation_split
    return None if held_out in (None, task.training_split, task.eval_split) else held_out


def non_member_pool(ctx: EvalContext, evaluated: Split) -> Split:
    """The records non-members are drawn from: ``evaluated`` and the task's held-out validation split,
    whose example ids are offset by the evaluated split's size (in-memory splits; a streamed one keeps
    the evaluated split alone)."""
    from dataclasses import replace

    from harness.privacy.references import joined

    name = held_out_split(ctx.task)
    if name is None:
        return evaluated
    held_out = ctx.task.load(name)
    if ctx.model.decoding is not None:
        held_out = held_out.redecoded(ctx.model.decoding) or held_out
    if evaluated.streamed or held_out.streamed:
        return evaluated
    offset = len(ctx.task.load())
    held_out = replace(held_out, attributes=held_out.attributes.assign(index=held_out.attributes["index"] + offset))
    return joined([evaluated, held_out], "non-member pool")


def seeded_rows(size: int, n: int, seed: int) -> np.ndarray:
    """``n`` positions of ``size`` drawn with ``seed``, in order (all of them where ``n >= size``)."""
    if n >= size:
        return np.arange(size)
    return np.sort(np.random.default_rng(seed).permutation(size)[:n])
