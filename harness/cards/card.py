"""A model card built from the store, rendered as Markdown (with Hugging Face front matter) or HTML."""

from __future__ import annotations

import base64
import fnmatch
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from harness import text as doc
from harness.errors import HarnessError
from harness.leaderboard import plots
from harness.measures import format_value
from harness.records import Record
from harness.selection import Choice, SelectionError, selected
from harness.stats import METHODS

NOT_PROVIDED = "not provided"
TASK_TYPES = {"image": "image-classification", "tabular": "tabular-classification", "text": "text-classification"}
FRONT_FIGURES = (("accuracy.top1", "overall", "accuracy"), ("calibration.ece", "overall", "expected calibration error"),
                 ("corruption.mce", "overall", "mean corruption error"),
                 ("adversarial.robust_accuracy", "attack=worst-linf@0.1", "robust accuracy (Linf 0.1)"))  # fmt: skip


class CardError(HarnessError, ValueError):
    """A card that cannot be written: no records of the model, or an unreadable --info file."""


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Image:
    path: str  # relative to the card (Markdown: a file beside it)
    caption: str
    png: bytes = b""  # the picture itself (HTML: embedded, one self-contained file)


@dataclass
class Section:
    title: str
    blocks: list[str | Table | Image] = field(default_factory=list)


class Facts:
    """The records of one model on one task, looked up by metric and slice."""

    def __init__(self, records: list[Record]) -> None:
        self.records = records

    def get(self, metric: str, slice: str = "overall") -> Record | None:
        return next((r for r in self.records if r.metric == metric and r.slice == slice), None)

    def all(self, metric: str) -> list[Record]:
        return [r for r in self.records if r.metric == metric]

    def where(self, metric: str, **globs: str) -> list[Record]:
        """Records of ``metric`` whose slice has exactly these keys, each value matching its glob."""
        return [r for r in self.all(metric) if set(r.parts) == set(globs)
                and all(fnmatch.fnmatchcase(r.parts[k], g) for k, g in globs.items())]  # fmt: skip

    def groups(self, metric: str, feature: str | None = None) -> list[Record]:
        """Records of one group of people: a slice of one pair, its key the feature (``sex=Female``)."""
        return [r for r in self.all(metric) if len(r.parts) == 1 and (feature is None or feature in r.parts)]


def _settings(value: Any) -> str:
    """``{"name": "mlp", "hidden": [256, 128]}`` -> ``mlp (hidden 256, 128)``; a string as it is."""
    if value is None:
        return NOT_PROVIDED
    if not isinstance(value, dict):
        return str(value)
    rest = {k: v for k, v in value.items() if k != "name"}
    parts = [f"{k.replace('_', ' ')} {', '.join(map(str, v)) if isinstance(v, list | tuple) else _settings(v)}"
             for k, v in rest.items()]  # fmt: skip
    name = str(value.get("name", ""))
    return f"{name} ({'; '.join(parts)})" if name and parts else name or "; ".join(parts)


COST_LABELS = {
    "best_throughput": "throughput (samples/s, best batch size)", "latency_p50_ms": "latency p50 (ms, batch 1)",
    "latency_p99_ms": "latency p99 (ms, batch 1)", "peak_memory_mb": "peak memory (MiB)",
    "energy_wh_per_1k": "energy (Wh per 1,000 inferences)", "carbon_g_per_1k": "carbon (g CO2-eq per 1,000)",
    "params": "parameters", "flops_per_sample": "FLOPs per sample",
}  # fmt: skip
EXPLANATION_SCORES = {"deletion_auc": "deletion AUC ↓", "insertion_auc": "insertion AUC ↑",
                      "faithfulness_correlation": "faithfulness ↑", "randomisation_pass": "sanity check"}  # fmt: skip


def shown(r: Record) -> str:
    return format_value(r.metric, r.value, r.ci_low, r.ci_high) + f" (n={r.n})"


def _interval(r: Record, scale: float = 1.0) -> str:
    return f"{r.value * scale:.3g} [{r.ci_low * scale:.3g}, {r.ci_high * scale:.3g}]"


# sections -----------------------------------------------------------------------------------------


def details(name: str, task: Any, info: dict, facts: Facts) -> Section:
    fingerprint = next((r.provenance.get("model_fingerprint") for r in facts.records), None)
    versions = next((r.provenance for r in facts.records), {})
    rows = [["model", name], ["description", info.get("description", NOT_PROVIDED)],
            ["source", info.get("source", NOT_PROVIDED)], ["architecture", _settings(info.get("architecture"))],
            ["parameters", f"{info['parameters']:,}" if "parameters" in info else NOT_PROVIDED],
            ["license", info.get("license", NOT_PROVIDED)], ["weights fingerprint", fingerprint or NOT_PROVIDED],
            ["evaluated with", f"harness {versions.get('harness', '?')}, torch {versions.get('torch', '?')}"],
            ["card written", datetime.now(UTC).strftime("%Y-%m-%d")]]  # fmt: skip
    if info.get("lineage"):  # a variant: what it was made from, step by step
        steps = "; then ".join(f"{s['variant']} (version {s['version']}{_params(s['params'])})"
                               for s in info["lineage"])  # fmt: skip
        rows.insert(1, ["variant of", f"{info.get('variant_of', '?')}: {steps}"])
    return Section("Model Details", [Table(["", ""], rows)])


def variant_section(store: Any, name: str, parent: str, task: Any) -> Section:
    from harness.cards.changes import changes

    sentences, rows = changes(store, name, parent, task.name, tuple(task.classes))
    blocks: list[str | Table | Image] = [f"Against its parent, {parent}, on the same examples:", *sentences]
    if rows:
        blocks.append(Table(["figure", "parent", "variant", "change (95% CI)", "verdict"], rows))
    return Section("What this variant changes", blocks)


def _params(params: dict) -> str:
    return "".join(f", {k} {v}" for k, v in params.items())


def intended_use(info: dict) -> Section:
    return Section("Intended Use", [
        f"Primary intended uses: {info.get('intended_use', NOT_PROVIDED)}.",
        f"Primary intended users: {info.get('intended_users', NOT_PROVIDED)}.",
        f"Out-of-scope uses: {info.get('out_of_scope', NOT_PROVIDED)}.",
    ])  # fmt: skip


def factors(task: Any, facts: Facts) -> Section:
    devices = sorted({str(r.provenance.get("device")) for r in facts.records if r.category == "efficiency"})
    blocks = [f"Groups evaluated: the task's sensitive attributes ({', '.join(task.sensitive) or 'none declared'}) "
              "and the intersections the fairness suite names.",
              "Environmental conditions: adversarial perturbations, image corruptions at five severities and "
              "feature shifts, where the robustness suite ran."]  # fmt: skip
    if devices:
        blocks.append(f"Instrumentation: cost measured on {', '.join(devices)}.")
    return Section("Factors", blocks)


def metrics_section(facts: Facts) -> Section:
    families = sorted({r.metric.split(".")[0] for r in facts.records})
    methods = "; ".join(f"{m}: {METHODS[m]}" for m in sorted({r.interval for r in facts.records} & set(METHODS)))
    return Section("Metrics", [
        f"Measured: {', '.join(families)}. Every figure has its sample count and an interval whose method "
        f"it names ({methods}); definitions and the tested coverage of each in the harness's docs/metrics.md.",
    ])  # fmt: skip


def evaluation_data(task: Any, facts: Facts) -> Section:
    accuracy = facts.get("accuracy.top1")
    n = accuracy.n if accuracy else None
    fingerprint = next((r.provenance.get("task_fingerprint") for r in facts.records), NOT_PROVIDED)
    return Section("Evaluation Data", [
        f"{task.name}: {task.description} Split: {task.eval_split}"
        + (f", {n:,} examples." if n else ".") + f" License: {task.license or NOT_PROVIDED}. "
        f"Citation: {(task.citation or NOT_PROVIDED).rstrip('.')}. Data fingerprint: {fingerprint}.",
    ])  # fmt: skip


def training_data(info: dict) -> Section:
    recipe = info.get("recipe")
    text = f"{info.get('training_data', NOT_PROVIDED)}."
    if recipe:
        text += f" Recipe: {_settings(recipe)}."
    return Section("Training Data", [text])


def quantitative(facts: Facts, figures: list[Image]) -> Section:
    blocks: list[str | Table | Image] = []
    headline = [[label, shown(r)] for metric, s, label in FRONT_FIGURES if (r := facts.get(metric, s))]
    headline += [["balanced accuracy", shown(r)] for r in facts.all("accuracy.balanced")]
    if headline:
        blocks += ["Overall:", Table(["figure", "value ± CI"], headline)]
    groups = facts.groups("fairness.accuracy")
    if groups:
        groups = sorted(groups, key=lambda r: (next(iter(r.parts)), plots.group_order(next(iter(r.parts.values())))))
        rows = [[r.slice, _interval(r, 100), str(r.n)] for r in groups]
        blocks += ["Disaggregated by group (accuracy in %, 95% CI):", Table(["group", "accuracy", "n"], rows)]
    robust = facts.where("adversarial.robust_accuracy", attack="worst-*")
    if robust:
        protocols = sorted({str(r.params.get("protocol")) for r in robust if r.params.get("protocol")})
        named = f" (including {', '.join(protocols)})" if protocols else ""
        blocks += [f"Robust accuracy, worst case over attacks{named}:",
                   Table(["norm@epsilon", "robust accuracy"], [[r.parts["attack"].removeprefix("worst-"), shown(r)]
                                                               for r in robust])]  # fmt: skip
    corruptions = facts.where("corruption.ce", corruption="*")
    if corruptions:
        rows = [[r.parts["corruption"], shown(r)] for r in corruptions]
        blocks += [
            "Corruption error relative to the baseline (CE, lower is better):",
            Table(["corruption", "CE"], rows),
        ]
    explained: dict[str, dict[str, str]] = {}
    for r in facts.records:
        score = r.metric.removeprefix("interpretability.")
        if r.metric.startswith("interpretability.") and score in EXPLANATION_SCORES and set(r.parts) == {"method"}:
            explained.setdefault(r.parts["method"], {})[score] = format_value(
                r.metric, r.value, r.ci_low, r.ci_high)  # fmt: skip
    if explained:
        n = next(r.n for r in facts.records if r.metric == "interpretability.deletion_auc")
        blocks += [f"Explanation quality (captum methods, {n} explained examples; the sanity check is the "
                   "model-parameter randomisation test):",
                   Table(["method", *EXPLANATION_SCORES.values()],
                         [[m, *(scores.get(k, "") for k in EXPLANATION_SCORES)] for m, scores in
                          sorted(explained.items())])]  # fmt: skip
    detected = facts.where("ood.auroc", detector="*", set="*")
    if detected:
        fpr = {r.slice: r for r in facts.where("ood.fpr_at_95_tpr", detector="*", set="*")}
        rows = [[r.parts["set"], r.parts["detector"], _interval(r, 100), _interval(fpr[r.slice], 100) if r.slice in fpr
                 else ""] for r in sorted(detected, key=lambda r: (r.parts["set"], -r.value))]  # fmt: skip
        blocks += ["Out-of-distribution detection (AUROC and FPR at 95% TPR in %, in-distribution positive, 95% "
                   "stratified bootstrap CI; best detector first):",
                   Table(["OOD set", "detector", "AUROC", "FPR@95%TPR"], rows)]  # fmt: skip
    cost = [r for r in facts.records if r.category == "efficiency" and r.parts in ({}, {"precision": "fp32"})
            and r.metric.removeprefix("efficiency.") in COST_LABELS]  # fmt: skip
    cost.sort(key=lambda r: list(COST_LABELS).index(r.metric.removeprefix("efficiency.")))
    if cost:
        blocks += ["Cost per device (fp32):", Table(["device", "figure", "value", "flags"], [
            [str(r.provenance.get("device", "")), COST_LABELS[r.metric.removeprefix("efficiency.")],
             format_value(r.metric, r.value, r.ci_low, r.ci_high), ", ".join(r.flags)] for r in cost])]  # fmt: skip
    blocks += figures
    return Section("Quantitative Analyses", blocks or [f"No figures in the store: {NOT_PROVIDED}."])


def findings(facts: Facts, sensitive: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """(ethical considerations, caveats and recommendations) written from the records."""
    ethics, caveats = [], []
    for gap in facts.where("fairness.accuracy_difference", feature="*"):
        feature = gap.parts["feature"]
        groups = facts.groups("fairness.accuracy", feature)
        if groups:
            weakest = min(groups, key=lambda r: r.value)
            ethics.append(f"Weakest {feature} group: {weakest.parts[feature]} at accuracy "
                          f"{_interval(weakest, 100)}% (n={weakest.n}); the largest accuracy gap between {feature} "
                          f"groups is {_interval(gap, 100)} points.")  # fmt: skip
    judged: dict[tuple[str, str], list[str]] = {}  # (feature, verdict) -> "criterion (groups)"
    for verdict in facts.all("fairness.verdict"):
        outcome = verdict.params.get("verdict") or ("pass" if verdict.value == 1 else "fail")
        if outcome == "pass":
            continue
        where = verdict.parts
        named = verdict.params.get("failing" if outcome == "fail" else "inconclusive", [])
        groups = ", ".join(sorted(named, key=plots.group_order)) or "?"
        criterion = where.get("criterion", "?").replace("_", " ")
        judged.setdefault((where.get("feature", "?"), outcome), []).append(f"{criterion} ({groups})")
    for (feature, outcome), criteria in judged.items():
        if outcome == "fail":
            ethics.append(f"Fails the four-fifths criterion by {feature} (the ratio's interval, simultaneous over "
                          f"the groups judged, lies wholly outside the band) for {'; '.join(criteria)}.")  # fmt: skip
        else:
            ethics.append(
                f"Inconclusive on the four-fifths criterion by {feature} (the ratio's interval, simultaneous over "
                f"the groups judged, straddles the band: more examples would decide) for {'; '.join(criteria)}."
            )
    clean = facts.get("adversarial.clean_accuracy", "attack=none")
    curve = sorted(
        (float(r.parts["attack"].split("@")[1]), r)
        for r in facts.where("adversarial.robust_accuracy", attack="worst-linf@*")
    )
    if clean and curve:
        halved = next((eps for eps, r in curve if r.value <= clean.value / 2), None)
        if halved is not None:
            caveats.append(f"Robust accuracy falls to half the clean accuracy at Linf epsilon {halved:g}.")
        else:
            caveats.append(f"Robust accuracy stays above half the clean accuracy up to Linf epsilon {curve[-1][0]:g}.")
    kept = facts.get("selective.risk", "coverage=0.9")
    if kept is not None:
        everything = facts.get("selective.risk", "coverage=1.0")
        before = f"from {_interval(everything, 100)}% " if everything is not None else ""
        caveats.append(f"Abstaining on the 10% least confident examples lowers the error {before}to "
                       f"{_interval(kept, 100)}% (selective risk at 90% coverage, 95% CI).")  # fmt: skip
    ethics += _leakage(facts)
    for best in _best_detectors(facts):
        caveats.append(f"Out-of-distribution inputs ({best.parts['set']}): the best detector here, "
                       f"{best.parts['detector']}, separates them with AUROC {_interval(best, 100)}% (picked on "
                       "these data: an optimistic choice).")  # fmt: skip
    ce = facts.where("corruption.ce", corruption="*")
    if ce:
        worst = max(ce, key=lambda r: r.value)
        caveats.append(f"Worst corruption: {worst.parts['corruption']} (CE {_interval(worst)}).")
    flags = sorted({f for r in facts.records for f in r.flags if f != "energy-estimated"})
    if flags:
        caveats.append(f"Evaluation flags (figures to read with care): {', '.join(flags)}.")
    if any("energy-estimated" in r.flags for r in facts.records):
        caveats.append("Energy and carbon figures are estimated (codecarbon's CPU load model: no energy "
                       "counters were readable), not measured.")  # fmt: skip
    if not ethics and not sensitive:
        ethics.append("The evaluation data declares no sensitive attributes, so performance is not "
                      "disaggregated by group of people.")  # fmt: skip
    classes = facts.where("accuracy.top1", **{"class": "*"})
    if len(classes) > 1:
        weakest, strongest = min(classes, key=lambda r: r.value), max(classes, key=lambda r: r.value)
        caveats.append(f"Weakest class: {weakest.parts['class']} at accuracy {_interval(weakest, 100)}% "
                       f"(n={weakest.n}); strongest: {strongest.parts['class']} at "
                       f"{_interval(strongest, 100)}%.")  # fmt: skip
    elif not ethics:
        ethics.append("No fairness evaluation in the store for this model: disaggregated performance is "
                      f"{NOT_PROVIDED}; run `harness run --suite fairness`.")  # fmt: skip
    return ethics, caveats or ["No evaluation flags were raised."]


def _leakage(facts: Facts) -> list[str]:
    """What the strongest membership attack finds, and which group leaks most."""
    tprs = [r for r in facts.where("membership.tpr", attack="*", fpr="0.01") if np.isfinite(r.value)]
    if not tprs:
        return []
    strongest = max(tprs, key=lambda r: r.value)
    attack = strongest.parts["attack"]
    auc = facts.get("membership.auc", f"attack={attack}")
    how = (f"an attacker with {strongest.params['reference_models']} reference models ({attack}, black-box)"
           if "reference_models" in strongest.params else f"the strongest threshold attack ({attack}, black-box, "
           "no reference models)")  # fmt: skip
    text = (f"Membership inference: {how} "
            f"identifies {_interval(strongest, 100)}% of training records at 1% false positives"
            + (f" (AUC {_interval(auc, 100)}%)" if auc is not None else ""))  # fmt: skip
    groups = [r for r in facts.where("membership.auc", attack=attack, feature="*", group="*")]
    if groups:
        most = max(groups, key=lambda r: r.value)
        text += (f"; records of {most.parts['feature']} = {most.parts['group']} leak most (AUC "
                 f"{_interval(most, 100)}%, {most.n} records: a small group's AUC is the noisiest)")  # fmt: skip
    return [text + "."]


def _best_detectors(facts: Facts) -> list[Record]:
    """The detector with the highest AUROC on each OOD set."""
    best: dict[str, Record] = {}
    for r in facts.where("ood.auroc", detector="*", set="*"):
        if r.parts["set"] not in best or r.value > best[r.parts["set"]].value:
            best[r.parts["set"]] = r
    return [best[name] for name in sorted(best)]


# rendering ----------------------------------------------------------------------------------------


def _markdown(title: str, sections: list[Section]) -> str:
    cell = doc.markdown

    lines = [f"# Model card: {cell(title)}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Table):
                lines.append("| " + " | ".join(cell(h) for h in block.headers) + " |")
                lines.append("|" + "|".join(" --- " for _ in block.headers) + "|")
                lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in block.rows]
            elif isinstance(block, Image):
                lines.append(f"![{cell(block.caption)}]({block.path})")
            elif section.title in ("Ethical Considerations", "Caveats and Recommendations"):
                lines.append(f"- {cell(block)}")
            else:
                lines.append(cell(block))
            lines.append("")
    return "\n".join(lines)


def _html(title: str, sections: list[Section]) -> str:
    out = ['<!doctype html><html lang="en"><head><meta charset="utf-8">',
           f"<title>Model card: {escape(title)}</title>",
           "<style>body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem;max-width:60rem}"
           "td,th{border-bottom:1px solid #ddd;padding:.2rem .6rem;text-align:left}table{border-collapse:collapse}"
           "img{max-width:100%}</style></head><body>", f"<h1>Model card: {escape(title)}</h1>"]  # fmt: skip
    for section in sections:
        out.append(f"<h2>{escape(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, Table):
                out.append("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in block.headers) + "</tr>"
                           + "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>"
                                     for row in block.rows) + "</table>")  # fmt: skip
            elif isinstance(block, Image):
                source = "data:image/png;base64," + base64.b64encode(block.png).decode()
                out.append(f'<figure><img src="{source}" alt="{escape(block.caption)}">'
                           f"<figcaption>{escape(block.caption)}</figcaption></figure>")  # fmt: skip
            else:
                out.append(f"<p>{escape(block)}</p>")
    return "\n".join(out) + "\n</body></html>\n"


def front_matter(name: str, task: Any, info: dict, facts: Facts, runs: list[dict]) -> str:
    from huggingface_hub import EvalResult, ModelCardData

    results = [EvalResult(task_type=TASK_TYPES.get(task.modality, "classification"), dataset_type=task.name,
                          dataset_name=task.name, dataset_split=task.eval_split, metric_type=metric,
                          metric_name=label, metric_value=round(r.value, 6))
               for metric, s, label in FRONT_FIGURES if (r := facts.get(metric, s))]  # fmt: skip
    used = {r.run_id for r in facts.records}
    energy = [run["cost"]["energy"] for run in runs if run["run_id"] in used and (run.get("cost") or {}).get("energy")]
    co2 = None
    if energy:
        co2 = {"emissions": round(sum(e["kg_co2"] for e in energy) * 1000, 6),
               "source": "codecarbon offline tracker via harness (" + ", ".join(sorted({e["method"] for e in energy}))
               + "): the whole evaluation runs that measured this card's figures, all their models",
               "training_type": "evaluation",
               "geographical_location": ", ".join(sorted({e["country"] for e in energy}))}  # fmt: skip
    data = ModelCardData(model_name=name, license=str(info.get("license", "other")).lower(), library_name="pytorch",
                         tags=["harness", task.modality], datasets=[task.name], eval_results=results or None,
                         co2_eq_emissions=co2)  # fmt: skip
    return "---\n" + data.to_yaml() + "\n---\n"


def write_card(store: Any, name: str, task_name: str | None, output: Path, *, fmt: str = "md",
               info_file: Path | None = None, choice: Choice | None = None) -> Path:  # fmt: skip
    """Write the card of ``name`` (and its figures beside it) from the chosen evaluation of each figure
    family (by default the most complete: a --limit run never replaces a full one); returns its path."""
    from harness.models import load_model
    from harness.tasks import get_task

    try:
        records = selected(store, choice or Choice(), models=[name])
    except SelectionError as exc:
        raise CardError(str(exc)) from None
    tasks = sorted({r.task for r in records})
    if not records:
        raise CardError(f"the store at {store.root} holds no records of {name}: run a suite with it first")
    if task_name is None:
        if len(tasks) > 1:
            raise CardError(f"{name} was evaluated on {', '.join(tasks)}: pass --task")
        task_name = tasks[0]
    if task_name not in tasks:
        raise CardError(f"the store holds no records of {name} on {task_name}; it has {', '.join(tasks)}")
    # the task and model as the run built them (options, checkpoint), from the newest record's provenance
    newest = max((r for r in records if r.task == task_name), key=lambda r: str(r.provenance.get("time", "")))
    built = newest.provenance
    task = get_task(task_name, **(built.get("task_options") or {}))
    model = load_model(name, task, checkpoint=built.get("model_checkpoint"), **(built.get("model_options") or {}))
    info = dict(model.info)
    if info_file is not None:
        try:
            extra = yaml.safe_load(info_file.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise CardError(f"cannot read --info {info_file}: {exc}") from None
        if not isinstance(extra, dict):
            raise CardError(f"--info {info_file} must be a YAML mapping (intended_use: ..., training_data: ...)")
        info.update(extra)
    facts = Facts([r for r in records if r.task == task_name])
    figures = _figures(store, name, task_name, facts, output, files=fmt != "html")
    ethics, caveats = findings(facts, tuple(task.sensitive))
    sections = [details(name, task, info, facts), intended_use(info), factors(task, facts), metrics_section(facts),
                evaluation_data(task, facts), training_data(info), quantitative(facts, figures),
                Section("Ethical Considerations", ethics), Section("Caveats and Recommendations", caveats)]  # fmt: skip
    if info.get("variant_of"):
        sections.insert(7, variant_section(store, name, info["variant_of"], task))
    output.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "html":
        output.write_text(_html(name, sections))
    else:
        output.write_text(front_matter(name, task, info, facts, store.runs()) + "\n" + _markdown(name, sections))
    return output


def _figures(store: Any, name: str, task: str, facts: Facts, output: Path, *, files: bool) -> list[Image]:
    """Stored figures and plots of the model's records; with ``files``, written as PNG files beside the
    card (Markdown), otherwise only held (HTML embeds them)."""
    folder = output.parent / f"{output.stem}_figures"
    drawn = [(plots.robust_curves(facts.records, task), "robust accuracy against epsilon"),
             (plots.corruption_severity(facts.records, task), "corruption accuracy by severity")]  # fmt: skip
    for feature in sorted({next(iter(r.parts)) for r in facts.groups("fairness.accuracy")}):
        drawn.append((plots.group_rates(facts.records, task, feature), f"rates by {feature}"))
    images = []
    for png, caption in drawn:
        if png is not None:
            images.append(_save(folder, f"{caption.replace(' ', '-')}.png", png, caption, files))
    jobs = {r.job for r in facts.records}
    for f in store.figures(model=name, task=task):
        if f["job_key"] not in jobs:  # drawn by an evaluation the card does not show
            continue
        if not any(i.path.endswith(f"{f['name']}.png") for i in images):
            images.append(_save(folder, f"{f['name']}.png", Path(f["path"]).read_bytes(), f["name"], files))
    return images


def _save(folder: Path, filename: str, png: bytes, caption: str, files: bool) -> Image:
    if files:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / filename).write_bytes(png)
    return Image(f"{folder.name}/{filename}", caption, png)
