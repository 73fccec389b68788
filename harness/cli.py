"""The ``harness`` command: parses, delegates, prints. Heavy imports happen inside the commands."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from harness.errors import HarnessError, plain

if TYPE_CHECKING:
    from rich.table import Table

app = typer.Typer(
    help="Evaluate trained classifiers: accuracy, calibration, robustness, fairness, explanations, cost.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
zoo_app = typer.Typer(help="The reference zoo: train its models from their recipes.", no_args_is_help=True)
app.add_typer(zoo_app, name="zoo")
out = Console()
err = Console(stderr=True)
log = logging.getLogger("harness")

StoreOpt = Annotated[
    Path | None, typer.Option("--store", help="Result store folder [default: $HARNESS_STORE or ./harness-results]")
]


LimitOpt = Annotated[
    int | None,
    typer.Option("--limit", help="Show the evaluations of runs cut to N examples [default: the most complete]"),
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Show the evaluations of runs with this seed")]
SpecOpt = Annotated[
    list[str] | None,
    typer.Option("--spec", help="Show this job (a key or its prefix, see `harness export --what jobs`)"),
]


def choice_of(limit: int | None, seed: int | None, spec: list[str] | None):  # -> harness.selection.Choice
    """Which stored evaluation of each figure family a view shows."""
    from harness.selection import Choice

    return Choice(limit=limit, seed=seed, specs=tuple(spec or ()))


def store_dir(path: Path | None) -> Path:
    return path or Path(os.environ.get("HARNESS_STORE", "harness-results"))


def canonical(model: str) -> str:
    """A model named as the store names it (``hf:./vit`` -> ``hf:/abs/vit``)."""
    from harness.models import canonical_name
    from harness.registry import RegistryError

    try:
        return canonical_name(model)
    except RegistryError:
        return model


def setup_logging(verbose: bool, quiet: bool) -> None:
    from rich.logging import RichHandler

    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=err, show_path=False)], force=True
    )


class What(StrEnum):
    models = "models"
    tasks = "tasks"
    metrics = "metrics"
    attacks = "attacks"
    explainers = "explainers"
    detectors = "detectors"
    privacy_attacks = "privacy-attacks"
    variants = "variants"
    suites = "suites"


@app.command("list")
def list_(what: Annotated[What | None, typer.Argument(help="What to list [default: everything]")] = None) -> None:
    """List the registered models, tasks, metrics, attacks, explainers, OOD detectors, privacy attacks,
    model variants and suites, with a one-line description each."""
    from rich.markup import escape
    from rich.table import Table

    from harness import registry

    def rows(kind: What) -> list[tuple[str, str]]:
        if kind is What.models:
            from harness.models import catalog

            return catalog()
        if kind is What.variants:
            from harness.variants import catalog as variant_catalog

            return variant_catalog()
        if kind is What.suites:
            import yaml

            from harness.config import suite_names, suites_dir

            return [
                (
                    n,
                    " ".join(
                        str(yaml.safe_load((suites_dir() / f"{n}.yaml").read_text()).get("description", "")).split()
                    ),
                )
                for n in suite_names()
            ]
        reg = {What.tasks: registry.tasks, What.metrics: registry.metrics, What.attacks: registry.attacks,
               What.explainers: registry.explainers, What.detectors: registry.detectors,
               What.privacy_attacks: registry.privacy_attacks}[kind]  # fmt: skip
        return [(e.name, e.description) for e in reg.entries()]

    for kind in [what] if what else list(What):
        table = Table(title=kind.value, title_justify="left", show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for name, description in rows(kind):
            table.add_row(escape(name), escape(description))  # plugins' text is not rich markup
        out.print(table)


@app.command()
def run(
    suite: Annotated[
        str | None, typer.Option("--suite", "-s", help="A built-in suite (see `harness list suites`)")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="A suite YAML file")] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Model(s) to evaluate instead of the suite's")
    ] = None,
    task: Annotated[list[str] | None, typer.Option("--task", "-t", help="Task(s) instead of the suite's")] = None,
    ood_task: Annotated[
        list[str] | None, typer.Option("--ood-task", help="OOD set(s) for the ood metric instead of its own")
    ] = None,
    metric: Annotated[list[str] | None, typer.Option("--metric", help="Metric(s) instead of the suite's")] = None,
    checkpoint: Annotated[str | None, typer.Option(help="Weights file for the --model(s)")] = None,
    model_option: Annotated[
        list[str] | None,
        typer.Option("--model-option", help="KEY=VALUE for the models (YAML values), e.g. pretrained=true"),
    ] = None,
    task_option: Annotated[
        list[str] | None,
        typer.Option("--task-option", help="KEY=VALUE for the tasks (YAML values), e.g. label=income, size=32"),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="The split to evaluate (tasks that take one: hf:, imagefolder:)")
    ] = None,
    revision: Annotated[str | None, typer.Option(help="hf: models: the branch, tag or commit to load")] = None,
    trust_remote_code: Annotated[
        bool,
        typer.Option(
            "--trust-remote-code",
            help="hf: models: run the code their repository ships (review it first; never taken from a suite file)",
            envvar="HARNESS_TRUST_REMOTE_CODE",
        ),
    ] = False,
    device: Annotated[
        str | None,
        typer.Option(help="auto, cpu, cuda, cuda:N, mps, several (cpu,cuda) or all [default: the suite's, auto]"),
    ] = None,
    country: Annotated[
        str | None,
        typer.Option(help="ISO 3166-1 alpha-3 code of the electricity grid, for carbon [default: the suite's, USA]"),
    ] = None,
    executor: Annotated[
        str | None, typer.Option(help="local (this process) or ray (Ray tasks) [default: the suite's, local]")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster to join: auto or HOST:PORT [default: start a local instance]")
    ] = None,
    retries: Annotated[int | None, typer.Option(help="Run a failed job again up to N times [default: 0]")] = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate a seeded subset of N examples per task")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of subsets and bootstrap resampling [default: 0]")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size [default: 256]")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Processes decoding image files [default: CPUs - 1, at most 8; 0: none]")
    ] = None,
    resamples: Annotated[int | None, typer.Option(help="Bootstrap resamples per CI [default: 1000]")] = None,
    store: StoreOpt = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Measure again what the store already holds")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the jobs and whether each is stored; run nothing")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or tables")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print every record as JSON on stdout")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging")] = False,
) -> None:
    """Evaluate a suite's models on its tasks and store the results (resuming what is stored)."""
    from harness import warm
    from harness.config import load_suite, load_suite_file
    from harness.store import Store

    setup_logging(verbose, quiet or as_json)
    if suite and config:
        raise typer.BadParameter("give --suite or --config, not both")
    if checkpoint and not model:
        raise typer.BadParameter("--checkpoint needs the --model whose weights it holds")
    spec = load_suite_file(config) if config else load_suite(suite or "quick")
    model_options = key_values(model_option, "--model-option")
    model_options.update({k: v for k, v in (("revision", revision), ("trust_remote_code", trust_remote_code)) if v})
    task_options = key_values(task_option, "--task-option") | ({"split": split} if split else {})
    spec = spec.with_overrides(
        models=model, tasks=task, metrics=metric, checkpoint=checkpoint, model_options=model_options,
        task_options=task_options, limit=limit, executor=executor, ray_address=ray_address, retries=retries,
        seed=seed, batch_size=batch_size, resamples=resamples, country=country, workers=workers, ood_tasks=ood_task,
    )  # fmt: skip
    key = None if no_cache or dry_run or as_json else warm.plan_key(spec, device)
    if key is not None and answer_from_store(spec, key, store_dir(store), quiet):
        return  # nothing changed since a complete run of the same command: its records, without torch
    from harness import runner
    from harness.hardware import devices
    from harness.progress import Reporter, RichReporter

    # --device cpu,cuda runs the suite once per device; metrics whose results depend on the device
    # (efficiency) are measured on each, the others come from the store after the first
    device_names = devices.expand(device or spec.device)  # an unavailable device fails before any work

    failures = []
    root = store_dir(store)  # a plan only reads the store: a dry run of a store it cannot write works
    with Store(root, readonly=dry_run and (root / "results.sqlite").is_file()) as results:
        for name in device_names:
            spec_on = spec.with_overrides(device=name)
            the_plan = runner.plan(spec_on, results, no_cache=no_cache, build=not dry_run)
            for model_name, task_name, why in the_plan.skipped:
                log.info("skipping %s on %s: %s", model_name, task_name, why)
                if (model or task) and not (quiet or as_json):  # the user named them: say what will not run
                    err.print(f"[dim]skipped: {model_name} on {task_name}: {why}[/]")
            if dry_run:
                print_plan(the_plan, as_json)
                continue
            if len(device_names) > 1 and not (quiet or as_json):
                err.print(f"[bold]on {devices.describe(devices.resolve(name))}[/]")
            reporter = Reporter() if quiet or as_json else RichReporter(err)
            try:
                result = runner.run(spec_on, results, no_cache=no_cache, reporter=reporter, argv=sys.argv[1:],
                                    planned=the_plan)  # fmt: skip
            except KeyboardInterrupt:
                err.print("interrupted: what finished is stored and the run is marked interrupted; the same "
                          "command measures the rest", highlight=False)  # fmt: skip
                raise typer.Exit(130) from None
            if as_json:
                print_json([r.to_dict() for r in result.records])
            elif not quiet:
                print_results(result.records, [(pair.name, pair.task) for pair in the_plan.pairs])
                count = result.cached + result.measured + len(result.failures)
                jobs = f"{count} job{'s' * (count != 1)}"
                source = f"{result.cached} from the store, {result.measured} measured"
                timing = f"run {result.run_id} in {result.seconds:.1f} s{cost_text(result.cost)}"
                err.print(f"{len(result.records)} records of {jobs} ({source}); {timing}; store {results.root}")
            failures += result.failures
            warn_at_chance(result.records)
            if not as_json:
                say_excluded(the_plan)
            device_bound = any(job.spec.device is not None for job in the_plan.jobs)
            if key is not None and not result.failures and len(device_names) == 1 and not device_bound:
                warm.remember(results.root, key, [(p.name, p.task) for p in the_plan.pairs],
                              [job.key for job in the_plan.jobs])  # fmt: skip
    from rich.markup import escape

    for failure in failures:
        err.print(
            f"[red]failed[/]: {failure.job.model} on {failure.job.task}, {failure.job.metric}: "
            f"{escape(plain(failure.error or ''))}",
            highlight=False,
        )
    if failures:
        raise typer.Exit(1)


def say_excluded(the_plan: Any) -> None:
    """Name what each task left out on request (unreadable files, rows without a label): n counts the rest."""
    from rich.markup import escape

    said = set()
    for pair in the_plan.pairs:
        excluded = pair.task_identity.excluded
        if not excluded or pair.task in said:
            continue
        said.add(pair.task)
        parts = []
        if "missing_labels" in excluded:
            parts.append(f"{excluded['missing_labels']} rows without a label (drop_missing_labels)")
        if "unreadable_files" in excluded:
            files = excluded["unreadable_files"]
            parts.append(f"{len(files)} unreadable files (skip_unreadable): {', '.join(files[:5])}"
                         + (", ..." if len(files) > 5 else ""))  # fmt: skip
        err.print(f"[yellow]note[/]: {escape(pair.task)} left out {escape('; '.join(parts))}; each n counts the "
                  "examples evaluated, and every job's spec names what was left out", highlight=False)  # fmt: skip


def warn_at_chance(records: list[Any]) -> None:
    from rich.markup import escape

    for r in records:
        for flag in r.flags:
            if flag.startswith("at-chance"):
                err.print(f"[yellow]warning[/]: {r.model} on {r.task}: {escape(flag)}", highlight=False)


def answer_from_store(spec: Any, key: str, root: Path, quiet: bool) -> bool:
    """Print a warm run's records from the store when an identical complete run left its plan there
    and every one of its jobs is stored (``harness.warm``); False where it did not."""
    import time

    from harness import __version__, warm
    from harness.store import Store, StoreError, new_run_id

    held = warm.recall(root, key) if (root / "results.sqlite").is_file() else None
    if held is None:
        return False
    pairs, jobs = held
    started = time.perf_counter()
    try:
        results = Store(root)
    except StoreError:  # a store that cannot be written is still read: the run is then not recorded in it
        results = Store(root, readonly=True)
    with results:
        if results.stored_keys(jobs) != set(jobs):
            return False
        run_id = new_run_id()
        if not results.readonly:
            results.start_run(run_id, spec.name, sys.argv[1:], __version__)
        records = results.records(keys=jobs)
        seconds = time.perf_counter() - started
        if not results.readonly:
            results.finish_run(run_id, "complete", {"seconds": seconds, "planned_from_store": True})
    if not quiet:
        print_results(records, pairs)
        count = f"{len(jobs)} job{'s' * (len(jobs) != 1)}"
        err.print(f"{len(records)} records of {count} ({len(jobs)} from the store, 0 measured; planned from the "
                  f"store: nothing changed since the run that measured them); run {run_id} in {seconds:.1f} s; "
                  f"store {results.root}")  # fmt: skip
    warn_at_chance(records)
    return True


def key_values(pairs: list[str] | None, flag: str) -> dict[str, Any]:
    """``["size=32", "sensitive=[sex, race]"]`` -> ``{"size": 32, "sensitive": ["sex", "race"]}``."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{flag} {pair!r}: expected KEY=VALUE, e.g. {flag} label=income")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def cost_text(cost: dict[str, Any]) -> str:
    """``, 0.41 Wh and 0.15 g CO2-eq (estimated, USA)`` for a run whose energy was tracked."""
    used = cost.get("energy")
    if not used:
        return ""
    wh, grams = used["kwh"] * 1000, used["kg_co2"] * 1000
    return f", {wh:.3g} Wh and {grams:.3g} g CO2-eq ({used['method']}, {used['country']})"


def print_json(data: Any) -> None:
    """Plain JSON on stdout for scripts (rich would wrap long lines at the terminal width)."""
    sys.stdout.write(json.dumps(data, indent=1, default=str) + "\n")


def passes(job: Any) -> int | None:
    """The job's estimated model passes (forward, or forward and backward), where its metric says."""
    from harness.registry import metrics

    metric = metrics.get(job.metric)()
    return metric.passes(metric.Params(**job.params), job.spec.examples.count)


def print_plan(the_plan: Any, as_json: bool) -> None:
    from rich.table import Table

    unbuilt = {j.key for pair in the_plan.pairs if pair.unbuilt for j in pair.jobs}
    rows = [
        {
            "model": j.model,
            "task": j.task,
            "metric": j.metric,
            "params": j.params,
            "stored": j.key in the_plan.stored,
            "key": None if j.key in unbuilt else j.key,
            "passes": passes(j),
        }
        for j in the_plan.jobs
    ]
    if as_json:
        print_json({"jobs": rows, "skipped": the_plan.skipped})
        return
    table = Table(title=f"plan: {the_plan.suite.name}", title_justify="left")
    for column in ("model", "task", "metric", "params", "passes (at most)", "status"):
        table.add_column(column)
    for row in rows:
        status = "[green]stored[/]" if row["stored"] else "[yellow]to run[/]" if row["key"] else "[dim]not built[/]"
        estimate = f"{row['passes']:,}" if row["passes"] is not None else ""
        params = json.dumps(row["params"]) if row["params"] else ""
        table.add_row(row["model"], row["task"], row["metric"], params, estimate, status)
    out.print(table)
    stored, pending = sum(r["stored"] for r in rows), sum(not r["stored"] and r["key"] is not None for r in rows)
    skipped = f"{len(the_plan.skipped)} incompatible pairs skipped"
    out.print(f"{len(rows)} jobs: {stored} stored, {pending} to run; {skipped}")
    if unbuilt:
        out.print(f"not built: {len(unbuilt)} jobs of models whose fingerprint is known only once they are built "
                  "(a dry run builds no model); whether they are stored is known when the run builds them")  # fmt: skip


FAIRNESS_COLUMNS = {
    "demographic_parity_difference": "DP diff", "demographic_parity_ratio": "DP ratio",
    "equalized_odds_difference": "EO diff", "equalized_odds_ratio": "EO ratio",
    "equal_opportunity_difference": "EOpp diff", "accuracy_difference": "acc diff",
    "worst_group_accuracy": "worst group acc",
}  # fmt: skip
UNITS = {
    "calibration": "ECE in %",
    "fairness": "accuracy in %, gaps and ratios as fractions; a ratio is the smallest group's rate over the "
    "largest's (fairlearn); 4/5: each group's rate over the reference group's (the largest group unless the "
    "suite names one) within [0.8, 1.25], judged on its interval: pass, fail or inconclusive",
    "efficiency": "on this run's device; timings: median and spread",
    "interpretability": "a row per method; AUCs of the class probability",
}
INTERPRETABILITY_COLUMNS = {
    "deletion_auc": "deletion AUC", "insertion_auc": "insertion AUC", "faithfulness_correlation": "faithfulness",
    "infidelity": "infidelity", "sensitivity_max": "max sensitivity", "sparseness": "sparseness",
    "randomisation_pass": "sanity",
}  # fmt: skip
VERDICT_COLUMNS = {"demographic_parity": "4/5 DP", "equalized_odds": "4/5 EO", "equal_opportunity": "4/5 EOpp"}


def headline(record: Any) -> tuple[str, str] | None:
    """Where a record goes in the summary tables: (what qualifies the model's row, e.g. the sensitive
    feature; the column), or None for detail left to the store (per-class accuracy, each single attack,
    shift and group): overall numbers, worst cases, the clean reference, disparities and verdicts."""
    parts, family, name = record.parts, *record.metric.split(".", 1)
    if family == "fairness" and "feature" in parts:
        rest = {k: v for k, v in parts.items() if k != "feature"}
        if name == "verdict" and set(rest) == {"criterion"}:
            return parts["feature"], VERDICT_COLUMNS[rest["criterion"]]
        column = FAIRNESS_COLUMNS.get(name)
        return (parts["feature"], column) if column and not rest else None
    if family == "interpretability" and "method" in parts:
        column = INTERPRETABILITY_COLUMNS.get(name)
        return (parts["method"], column) if column and set(parts) == {"method"} else None
    if family == "efficiency" and set(parts) == {"precision"}:
        short = {
            "best_throughput": "best samples/s",
            "latency_p50_ms": "p50 ms",
            "latency_p99_ms": "p99 ms",
            "peak_memory_mb": "peak MB",
            "energy_wh_per_1k": "Wh/1k",
            "carbon_g_per_1k": "gCO2e/1k",
        }.get(name)
        return None if short is None else ("", f"{short} {parts['precision']}")
    if family == "efficiency":  # what the model is; MACs are half the FLOPs, left to the store
        column = {"params": "params", "weights_mb": "weights MB", "flops_per_sample": "FLOPs/sample"}.get(name)
        return None if column is None or parts else ("", column)
    column = _column(record)
    return None if column is None else ("", column)


def _column(record: Any) -> str | None:
    parts = record.parts
    if not parts:
        return record.metric.split(".", 1)[1]
    if parts.get("attack", "").startswith("worst-"):
        return parts["attack"].removeprefix("worst-").replace("@", " ")
    if record.metric == "tabular_shift.worst_accuracy":
        return "worst shift"
    if parts in ({"attack": "none"}, {"shift": "none"}):
        return "clean"
    return None


def column_order(column: str, first: list[str], present: list[str]) -> tuple:
    """Headline numbers first, then epsilon grids by norm and epsilon (linf 0.01 ... l2 2), then the rest
    in the order they came."""
    if column in first:
        return (0, first.index(column))
    norm, _, eps = column.partition(" ")
    if norm in ("linf", "l2") and eps.replace(".", "", 1).isdigit():
        return (1, norm != "linf", float(eps))
    return (2, present.index(column))


def print_results(records: list[Any], order: list[tuple[str, str]]) -> None:
    """One table per task and metric family: a row per model, a column per headline number; tasks and
    models in the order the suite names them (``order``: the plan's (model, task) pairs)."""
    from rich.table import Table

    from harness.measures import format_value

    tables: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    families: dict[str, list[str]] = {}
    qualifiers: dict[tuple[str, str], list[str]] = {}  # (task, model) -> row qualifiers in order
    for r in records:
        place = headline(r)
        if place is not None:
            qualifier, column = place
            family = r.metric.split(".", 1)[0]
            families.setdefault(r.task, [])
            if family not in families[r.task]:
                families[r.task].append(family)
            seen = qualifiers.setdefault((r.task, r.model), [])
            if qualifier not in seen:
                seen.append(qualifier)
            label = f"{r.model} · {qualifier}" if qualifier else r.model
            tables.setdefault((r.task, family), {}).setdefault(label, {})[column] = r
    first = ["top1", "top5", "balanced", "macro_f1", "clean", *FAIRNESS_COLUMNS.values(), *VERDICT_COLUMNS.values(),
             *INTERPRETABILITY_COLUMNS.values()]  # fmt: skip
    tasks = list(dict.fromkeys(t for _, t in order))
    for task_name in tasks:
        for family in sorted(families.get(task_name, []), key=lambda f: f not in ("accuracy", "calibration")):
            rows = tables[task_name, family]
            labels = [f"{m} · {q}" if q else m for m, t in order if t == task_name
                      for q in qualifiers.get((task_name, m), [])]  # fmt: skip
            models = [label for label in labels if label in rows]
            present = list(dict.fromkeys(c for row in rows.values() for c in row))
            columns = sorted(present, key=lambda c: column_order(c, first, present))
            directions = {c: r.direction for row in rows.values() for c, r in row.items()}
            unit = UNITS.get(family, "in %")
            flags = {m: sorted({f for r in rows[m].values() for f in r.flags}) for m in models}
            text = {
                (m, c): format_value(r.metric, r.value, r.ci_low, r.ci_high) + (" ⚑" if r.flags else "")
                for m in models for c, r in rows[m].items()
            }  # fmt: skip
            # as many number columns per table as the terminal holds; wider families continue below (a
            # pipe or a file takes each table whole, as the README shows them)
            width = {c: max(len(c) + 2, *(len(text.get((m, c), "")) for m in models)) + 3 for c in columns}
            room = (out.width if out.is_terminal else 100_000) - max(len(m) for m in models) - 4 - 9
            chunks: list[list[str]] = [[]]
            for c in columns:
                if chunks[-1] and sum(width[x] for x in chunks[-1]) + width[c] > room:
                    chunks.append([])
                chunks[-1].append(c)
            for k, chunk in enumerate(chunks):
                part = f" {k + 1}/{len(chunks)}" if len(chunks) > 1 else ""
                table = Table(
                    title=f"{task_name} · {family}{part} ({unit}, ± the larger side of the 95% interval)",
                    title_justify="left",
                    caption="↑ higher is better, ↓ lower is better; ⚑ flagged",
                    caption_justify="left",
                )
                table.add_column("model", style="bold", no_wrap=True)
                for c in chunk:
                    arrow = "↑" if directions[c] == "higher" else "↓"
                    table.add_column(f"{c} {arrow}", justify="right", no_wrap=True)
                counted = family != "efficiency"  # its figures count repeats, queries or samples: see the store
                if counted:
                    table.add_column("n", justify="right")
                last = k == len(chunks) - 1 and any(flags.values())
                if last:
                    table.add_column("flags", style="red")
                for model_name in models:
                    row = rows[model_name]
                    cells = []
                    for c in chunk:
                        r = row.get(c)
                        cells.append(
                            f"[red]{text[model_name, c]}[/]" if r and r.flags else text.get((model_name, c), "")
                        )
                    extra = [", ".join(flags[model_name])] if last else []
                    n = [str(max(r.n for r in row.values()))] if counted else []
                    table.add_row(model_name, *cells, *n, *extra)
                print_whole(table)


def format_of(fmt: StrEnum | None, output: Path | None, formats: type[StrEnum], default: str) -> str:
    """The format asked for, else the one of ``formats`` the output file's name says (``board.html``,
    ``card.md``), else ``default``: ``-o board.html`` alone must not write Markdown into an .html file."""
    if fmt is not None:
        return fmt.value
    suffix = output.suffix.lstrip(".").lower() if output is not None else ""
    suffix = {"htm": "html", "markdown": "md"}.get(suffix, suffix)
    return suffix if suffix in {f.value for f in formats} else default


class BoardFormat(StrEnum):
    terminal = "terminal"
    md = "md"
    csv = "csv"
    json = "json"
    html = "html"


@app.command()
def leaderboard(
    suite: Annotated[str | None, typer.Option("--suite", "-s", help="The suite whose models and headlines")] = None,
    task: Annotated[str | None, typer.Option("--task", "-t", help="Only this task")] = None,
    device: Annotated[str | None, typer.Option(help="Only rows on this device (e.g. cpu, cuda)")] = None,
    sort: Annotated[str | None, typer.Option(help="Rank by this column label [default: the first]")] = None,
    fmt: Annotated[
        BoardFormat | None, typer.Option("--format", "-f", help="Output format [default: from -o, else terminal]")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write [default: stdout]")] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Compare leaderboards/ with a fresh run of the fast reference suites")
    ] = False,
    folder: Annotated[Path, typer.Option("--dir", help="The committed leaderboards")] = Path("leaderboards"),
    limit: LimitOpt = None,
    seed: SeedOpt = None,
    spec: SpecOpt = None,
    store: StoreOpt = None,
) -> None:
    """Rank the models in the store on a suite's headline figures, with CIs and sanity flags."""
    from harness.leaderboard import leaderboard as build
    from harness.leaderboard import render
    from harness.store import Store

    setup_logging(False, False)
    if check:
        from harness.leaderboard.check import CHECKED
        from harness.leaderboard.check import check as compare

        problems = compare(folder)
        for problem in problems:
            err.print(problem, markup=False, highlight=False)
        if problems:
            raise typer.Exit(1)
        err.print(f"{folder}: {', '.join(CHECKED)} match a fresh run")
        return
    root = store_dir(store)
    if not (root / "results.sqlite").is_file():
        raise typer.BadParameter(f"no result store at {root}: run `harness run` first, or pass --store")
    title = f"harness leaderboard: {suite or 'every suite'}"
    fmt = BoardFormat(format_of(fmt, output, BoardFormat, "terminal"))
    with Store(root, readonly=True) as results:
        choice = choice_of(limit, seed, spec)
        board = build(results, suite=suite, task=task, device=device, sort=sort, choice=choice)
        if fmt is BoardFormat.html:
            from harness.leaderboard.html import page
            from harness.selection import selected

            shown = set(board.frame["model"])
            records = [r for r in selected(results, choice) if r.model in shown and r.task in set(board.frame["task"])]
            html_text = page(board, records, title, figures=results.figures(), runs=results.runs())
    if fmt is BoardFormat.terminal and output is None:
        render.terminal(board, out, title)
        return
    text = {"terminal": lambda: render.markdown(board, title), "md": lambda: render.markdown(board, title),
            "csv": lambda: render.csv(board), "json": lambda: render.as_json(board),
            "html": lambda: html_text}[fmt.value]()  # fmt: skip
    if output is None:
        sys.stdout.write(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    err.print(f"wrote {len(board.frame)} leaderboard rows to {output}")


ExemplarsOpt = Annotated[
    Path | None,
    typer.Option("--exemplars", help="Write the examples one model gets right and the other wrong (.csv or .json)"),
]


@app.command()
def compare(
    a: Annotated[str, typer.Argument(help="Model A, e.g. zoo:fmnist-cnn")],
    b: Annotated[str, typer.Argument(help="Model B, e.g. zoo:fmnist-cnn-adv")],
    task: Annotated[str | None, typer.Option("--task", "-t", help="Only this task")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Every comparison as JSON on stdout")] = False,
    show_all: Annotated[bool, typer.Option("--all", help="Show every figure, not only the key ones")] = False,
    limit: LimitOpt = None,
    seed: SeedOpt = None,
    store: StoreOpt = None,
    exemplars_to: ExemplarsOpt = None,
) -> None:
    """Paired comparison of two models on the same examples: both values, the difference with its CI,
    McNemar's exact test or a paired bootstrap, Holm-adjusted p-values and a verdict per figure; then
    the exemplars (right by one, wrong by the other) and the classes and groups over-represented
    among them (Fisher's exact test, Holm)."""
    from rich.table import Table
    from rich.text import Text

    from harness.leaderboard.compare import compare as paired
    from harness.leaderboard.exemplars import exemplars
    from harness.measures import measure, metric_of
    from harness.store import Store

    setup_logging(False, False)
    root = store_dir(store)
    if not (root / "results.sqlite").is_file():
        raise typer.BadParameter(f"no result store at {root}: run `harness run` first, or pass --store")
    with Store(root, readonly=True) as results:
        choice = choice_of(limit, seed, None)
        rows = paired(results, canonical(a), canonical(b), task=task, resamples=1000, choice=choice)
        found = exemplars(results, canonical(a), canonical(b), task=task, choice=choice,
                          classes=task_classes({c.task for c in rows}))  # fmt: skip
    if exemplars_to is not None:
        write_exemplars(found, exemplars_to)
    if as_json:
        print_json([{"task": c.task, "figure": c.figure, "metric": c.metric, "slice": c.slice, "a": c.a.value,
                     "a_ci": [c.a.ci_low, c.a.ci_high], "paired_on": c.paired_on,
                     "b": c.b.value, "b_ci": [c.b.ci_low, c.b.ci_high], "difference": c.difference.value,
                     "difference_ci": [c.difference.ci_low, c.difference.ci_high], "n": c.difference.n,
                     "test": c.test, "p": c.p, "p_holm": c.p_holm, "verdict": c.verdict} for c in rows])  # fmt: skip
        return
    shown = rows if show_all else [c for c in rows if c.key]
    tasks = sorted({c.task for c in rows})
    on = f" on {tasks[0]}" if len(tasks) == 1 else ""
    table = Table(title=Text(f"A = {a}, B = {b}{on}: paired on the same examples; p adjusted by Holm over "
                             f"{len(rows)} figures"), title_justify="left")  # fmt: skip
    columns = ("task", "figure", "A", "B", "A - B (95% CI)", "n", "test", "p (Holm)", "verdict")[bool(on) :]
    for column in columns:
        table.add_column(column, justify="left" if column in ("task", "figure", "test", "verdict") else "right",
                         no_wrap=True)  # fmt: skip
    for c in shown:
        declared = measure(c.metric)
        num = functools.partial(shown_number, percent=declared is not None and declared.percent)
        d = c.difference
        diff = f"{num(d.value, '+')} [{num(d.ci_low, '+')}, {num(d.ci_high, '+')}]"
        test = "bootstrap" if c.test == "paired bootstrap" else c.test.removesuffix(" exact")
        verdict = "n.s." if c.verdict == "no significant difference" else c.verdict
        values = (c.task, c.figure, num(c.a.value), num(c.b.value), diff, str(d.n), test,
                  f"{c.p_holm:.2g}", verdict)[bool(on) :]  # fmt: skip
        table.add_row(*[Text(v) for v in values])
    print_whole(table)
    paired_on = sorted({(c.task, c.paired_on) for c in rows})
    out.print(Text("paired on " + "; ".join(f"{t}: {p}" for t, p in paired_on) + " (for each kind of outcome, the "
                   "largest set of examples both were evaluated on with the same settings)"))  # fmt: skip
    out.print(
        "proportions in percent, differences in percentage points; test: McNemar's exact test on per-example "
        "correct/incorrect, or a paired bootstrap of the per-example differences; n.s.: no significant "
        "difference at 0.05 after Holm"
    )
    summary = Table(title="every figure compared, by family", title_justify="left")
    for column in ("task", "family", "figures", "A better", "B better", "no significant difference"):
        summary.add_column(column, justify="left" if column in ("task", "family") else "right")
    families: dict[tuple[str, str], list[str]] = {}
    for c in rows:
        families.setdefault((c.task, metric_of(c.metric) or c.metric), []).append(c.verdict)
    for (t, family), verdicts in families.items():
        counts = [str(verdicts.count(v)) for v in ("A better", "B better", "no significant difference")]
        summary.add_row(Text(t), Text(family), str(len(verdicts)), *counts)
    out.print(summary)
    if not show_all and len(shown) < len(rows):
        out.print(
            f"{len(shown)} key figures of {len(rows)} shown (accuracy, worst-case robust accuracy, corruption "
            "accuracy at severity 3, explanation deletion AUC); --all shows every one, --json gives all"
        )
    for found_on in found:
        print_exemplars(found_on, a, b, exemplars_to)


def shown_number(x: float, sign: str = "", *, percent: bool) -> str:
    """A figure as compare prints it: a proportion in percent (a difference in points), else as it is."""
    return f"{100 * x:{sign}.1f}" if percent else f"{x:{sign}.3f}"


def task_classes(names: set[str]) -> dict[str, tuple[str, ...]]:
    """Class names of the tasks that can be opened here (a task whose data is elsewhere keeps numbers)."""
    from harness.tasks import get_task

    out = {}
    for name in names:
        try:
            out[name] = tuple(get_task(name).classes)
        except Exception:  # a name is only a nicer label than a class number
            continue
    return out


def write_exemplars(found: list, path: Path) -> None:
    import pandas as pd

    from harness.files import atomic_write

    frame = pd.concat([e.frame.assign(task=e.task) for e in found], ignore_index=True)
    if path.suffix not in (".csv", ".json"):
        raise typer.BadParameter(f"--exemplars {path}: name a .csv or .json file")
    with atomic_write(path) as tmp:
        if path.suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_json(tmp, orient="records")


def print_exemplars(found, a: str, b: str, written: Path | None) -> None:
    from rich.table import Table
    from rich.text import Text

    from harness.text import p_value

    counts = found.counts()
    out.print(Text(f"exemplars on {found.task} (clean pass, {found.examples:,} paired examples): "
                   + "; ".join(f"{d}: {n:,}" for d, n in counts.items())
                   + (f"; written to {written}" if written else "; --exemplars FILE writes them")))  # fmt: skip
    over = found.over_represented()
    if not over:
        out.print("no class or group is over-represented among them (Fisher's exact test, Holm, 0.05)")
        return
    table = Table(title=Text(f"over-represented among the exemplars (A = {a}, B = {b}; Fisher's exact test, "
                             "one-sided, Holm)"), title_justify="left")  # fmt: skip
    for column in ("exemplars", "feature", "group", "of them", "share", "share of the data", "ratio", "p (Holm)"):
        table.add_column(column, justify="left" if column in ("exemplars", "feature", "group") else "right")
    for g in over[:15]:
        shares = f"{100 * g.share:.1f}%", f"{100 * g.base_share:.1f}%", f"{g.ratio:.2f}x", p_value(g.p_holm)
        table.add_row(Text(g.direction), Text(g.feature), Text(g.group), f"{g.count}/{g.exemplars}", *shares)
    print_whole(table)


def print_whole(table: Table) -> None:
    """Print a table without cutting a cell short: to a pipe or a file at its natural width (files do
    not wrap), in a terminal too narrow for it with its cells wrapped."""
    needed = out.measure(table, options=out.options.update(max_width=10_000)).maximum
    if needed <= out.width:
        out.print(table)
    elif not out.is_terminal:
        width = out.width
        out.width = needed  # rich caps print(width=...) at the console's: widen it for this table
        try:
            out.print(table)
        finally:
            out.width = width
    else:
        for column in table.columns:
            column.no_wrap, column.overflow = False, "fold"
        out.print(table)


class CardFormat(StrEnum):
    md = "md"
    html = "html"


@app.command()
def card(
    model: Annotated[str, typer.Argument(help="The model, e.g. zoo:fmnist-cnn")],
    task: Annotated[str | None, typer.Option("--task", "-t", help="The task [default: the only one]")] = None,
    fmt: Annotated[
        CardFormat | None, typer.Option("--format", "-f", help="Markdown (Hugging Face) or HTML [default: from -o]")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write")] = Path("MODEL_CARD.md"),
    info: Annotated[
        Path | None, typer.Option(help="YAML with what the store cannot know: intended_use, training_data, ...")
    ] = None,
    limit: LimitOpt = None,
    seed: SeedOpt = None,
    spec: SpecOpt = None,
    store: StoreOpt = None,
) -> None:
    """Write a model card (Mitchell et al.) from the store, with findings and figures beside it."""
    from harness.cards import write_card
    from harness.store import Store

    setup_logging(False, False)
    root = store_dir(store)
    if not (root / "results.sqlite").is_file():
        raise typer.BadParameter(f"no result store at {root}: run `harness run` first, or pass --store")
    with Store(root, readonly=True) as results:
        path = write_card(
            results,
            canonical(model),
            task,
            output,
            fmt=format_of(fmt, output, CardFormat, "md"),
            info_file=info,
            choice=choice_of(limit, seed, spec),
        )
    err.print(f"wrote the card of {model} to {path}")


class ExportWhat(StrEnum):
    records = "records"
    examples = "examples"
    runs = "runs"
    jobs = "jobs"


class ExportFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"
    json = "json"


@app.command()
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write")],
    what: Annotated[
        ExportWhat, typer.Option(help="Records (one number each), per-example outputs, or runs and their cost")
    ] = ExportWhat.records,
    fmt: Annotated[ExportFormat | None, typer.Option("--format", "-f", help="[default: from the file name]")] = None,
    suite: Annotated[str | None, typer.Option("--suite", "-s", help="Only what this suite measures")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", "-m")] = None,
    task: Annotated[list[str] | None, typer.Option("--task", "-t")] = None,
    every: Annotated[
        bool, typer.Option("--every-spec", help="Records of every stored evaluation, not one per figure family")
    ] = False,
    limit: LimitOpt = None,
    seed: SeedOpt = None,
    spec: SpecOpt = None,
    store: StoreOpt = None,
) -> None:
    """Export stored records, per-example outputs, jobs (with their specs) or runs (with what each cost)
    as a flat table (CSV, Parquet or JSON). Records are those of the chosen evaluation of each figure
    family (as leaderboards show them) unless --every-spec."""
    from harness.export import export_table

    setup_logging(False, False)
    fmt_name = fmt.value if fmt else output.suffix.lstrip(".").lower()
    if fmt_name not in {f.value for f in ExportFormat}:
        raise typer.BadParameter(f"cannot tell the format of {output}: pass --format csv, parquet or json")
    rows = export_table(store_dir(store), what.value, output, fmt_name, suite=suite,
                        models=[canonical(m) for m in model] if model else None, tasks=task,
                        choice=None if every else choice_of(limit, seed, spec))  # fmt: skip
    err.print(f"wrote {rows} {what.value} rows to {output}")


@app.command()
def verify(
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON on stdout")] = False,
) -> None:
    """Check the store against what made it (like `git fsck`): the database, every job's spec and records
    against their digests, every per-example file and figure against its hash, figures recomputed from
    stored outcomes, warm plans and leftovers. Exits 1 when anything is wrong; writes nothing."""
    from rich.markup import escape

    from harness.verify import verify as check

    setup_logging(False, True)  # what is damaged is the report itself, not a warning beside it
    report = check(store_dir(store))
    if as_json:
        print_json(report.to_dict())
    else:
        for finding in report.findings:
            out.print(f"[red]{finding.kind}[/]: {escape(finding.where)}: {escape(finding.detail)}", highlight=False)
        checked = ", ".join(f"{count} {what}" for what, count in report.checked.items())
        unverifiable = ", ".join(f"{count} {what}" for what, count in report.unverifiable.items() if count)
        verdict = "intact" if report.ok else f"{len(report.findings)} problem{'s' * (len(report.findings) != 1)}"
        err.print(f"store {report.root}: {verdict}; checked {checked}"
                  + (f"; not checkable (stored before digests were kept): {unverifiable}" if unverifiable else ""),
                  highlight=False)  # fmt: skip
    if not report.ok:
        raise typer.Exit(1)


@zoo_app.command("train")
def zoo_train(
    names: Annotated[list[str] | None, typer.Argument(help="Zoo models to train [default: all]")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the .safetensors files")] = Path("zoo-weights"),
    epochs: Annotated[int | None, typer.Option(help="Override the recipe's epochs (for quick trials)")] = None,
    limit: Annotated[int | None, typer.Option(help="Train on a seeded subset of N examples (for quick trials)")] = None,
) -> None:
    """Train reference-zoo models from their recipes (seeded; see `harness list models`)."""
    from rich.progress import Progress
    from rich.table import Table

    from harness.models.zoo import catalog, entry
    from harness.models.zoo.train import train

    setup_logging(False, False)
    names = names or list(catalog())
    for name in names:
        entry(name)  # unknown names fail before any training
    table = Table("model", "test accuracy", "train seconds", "file")
    with Progress(console=err) as progress:
        for name in names:
            bar = progress.add_task(f"training {name}", total=None)
            result = train(
                name,
                out_dir,
                epochs=epochs,
                limit=limit,
                on_step=lambda d, t, bar=bar: progress.update(bar, completed=d, total=t),
            )
            table.add_row(name, f"{result.test_accuracy:.4f}", f"{result.seconds:.0f}", str(result.path))
    out.print(table)


def version_callback(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"harness {version('harness')}", highlight=False)
        raise typer.Exit()


@app.callback()
def common(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Print the version and exit")
    ] = False,
) -> None:
    """Evaluate trained classifiers: accuracy, calibration, robustness, fairness, explanations, cost."""


def main() -> None:
    try:
        app()
    except HarnessError as exc:
        from rich.markup import escape

        err.print(f"[bold red]error:[/] {escape(plain(str(exc)))}", highlight=False)
        sys.exit(2)
