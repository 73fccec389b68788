"""Plan (model x task x metric) jobs, skip what the store holds, run the rest, store each as it ends.

Planning resolves each job to its ``JobSpec`` (the model's canonical identity and fingerprint, the
exact examples, the metric's parameters with their defaults, what else it reads, the device where it
matters); the spec's hash is the job's key, so the store serves a job only for the same computation.

The unit of work handed to an executor is a (model, task) pair with its pending metric jobs, so that
the pair's clean pass is computed once and shared; each finished job comes back as it ends and is
committed at once, so a killed run loses only the job in flight.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from harness import __version__, stats
from harness.config import ModelRef, Suite
from harness.context import EvalContext
from harness.errors import HarnessError
from harness.executors import Executor, InProcessExecutor, Needs, make_executor
from harness.hardware import devices, energy
from harness.models import check_model, fingerprint_model, load_model, remember_fingerprint
from harness.models.base import IncompatibleError, Model
from harness.progress import NullReporter, Reporter
from harness.records import Record
from harness.registry import metrics
from harness.spec import ExampleSet, JobSpec, MetricSpec, ModelIdentity, TaskIdentity, index_digest
from harness.store import JobRow, Store, StoreError, key_of, new_run_id
from harness.tasks import Task, get_task
from harness.tasks.stream import default_workers

log = logging.getLogger(__name__)


class PlanError(HarnessError, ValueError):
    """A suite that yields nothing to run; the message says why."""


@dataclass(frozen=True)
class Job:
    model: str
    task: str
    metric: str
    params: dict[str, Any]  # resolved: every default filled in
    key: str  # the hash of the spec
    spec: JobSpec


@dataclass
class Pair:
    """One (model, task) pair and its jobs. The model is loaded during planning only when its source
    cannot give its fingerprint without loading it; otherwise when the pair first runs."""

    ref: ModelRef
    identity: ModelIdentity  # the model's canonical name and fingerprint, as every job's spec holds it
    task_identity: TaskIdentity
    examples: ExampleSet  # the examples of the pair (all, or the run's seeded subset)
    subset: np.ndarray | None  # their indices in the split, None for all
    examples_key: str  # where the clean pass's per-example outputs are stored
    jobs: list[Job] = field(default_factory=list)
    model: Model | None = None
    unbuilt: bool = False  # planned without building the model (a dry run): its fingerprint is not known
    stored_clean: pd.DataFrame | None = None  # the clean pass's per-example outputs from an earlier run

    @property
    def task(self) -> str:
        return self.task_identity.name

    @property
    def task_options(self) -> dict[str, Any]:
        return self.task_identity.options

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint

    @property
    def name(self) -> str:
        return self.ref.name

    def load(self) -> Model:
        if self.model is None:
            ref = self.ref
            self.model = load_model(ref.name, self.get_task(), checkpoint=ref.checkpoint, **ref.options)
        return self.model

    def get_task(self) -> Task:
        return get_task(self.task, **self.task_options)


@dataclass
class Plan:
    suite: Suite
    pairs: list[Pair]
    stored: set[str]
    skipped: list[tuple[str, str, str]]  # (model, task, why) pairs a group names but that cannot run

    @property
    def jobs(self) -> list[Job]:
        return [job for pair in self.pairs for job in pair.jobs]

    def pending(self, pair: Pair) -> list[Job]:
        return [job for job in pair.jobs if job.key not in self.stored]


@dataclass
class Outcome:
    """What one job produced: records, or the error that stopped it."""

    pair: Pair
    job: Job
    records: list[Record] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)  # how it was run (versions, device, time)


@dataclass
class Examples:
    """Per-example outputs of a pair: its clean pass (kind ``clean``) or what a metric added."""

    pair: Pair
    key: str
    kind: str
    task_fingerprint: str
    frame: pd.DataFrame
    job_key: str | None = None  # the job that made them; None for the clean pass, which every job shares


@dataclass
class Figure:
    """A PNG a metric drew for a job."""

    pair: Pair
    job: Job
    name: str
    png: bytes


@dataclass
class RunResult:
    run_id: str
    records: list[Record]
    measured: int
    cached: int
    failures: list[Outcome]
    seconds: float
    cost: dict[str, Any] = field(default_factory=dict)  # what the run cost to make, as stored in the runs table


def library_versions() -> dict[str, str]:
    """Versions of what shapes the numbers, read from package metadata (importing timm takes seconds)."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    out = {"harness": __version__, "python": platform.python_version(), "torch": torch.__version__}
    for package in ("numpy", "timm", "scikit-learn"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "absent"
    return out


def plan(suite: Suite, store: Store, *, no_cache: bool = False, build: bool = True) -> Plan:
    """Resolve every group to its runnable pairs and jobs, each job with its full ``JobSpec``; a model
    whose source cannot give its fingerprint without loading it is loaded here, once, unless ``build`` is
    False (a dry run: no model is instantiated, and such a pair's jobs are planned as not known)."""
    pairs: dict[tuple[str, str | None, str, str, str], Pair] = {}
    skipped: list[tuple[str, str, str]] = []
    depends: dict[tuple[str, str, str], dict[str, Any]] = {}  # (metric, params, task): what else it reads
    for group in suite.groups:
        for task_ref in group.tasks:
            task = get_task(task_ref.name, **task_ref.options)
            task_name = task.name
            for ref in group.models:
                try:
                    check_model(ref.name, task, **ref.options)
                except IncompatibleError as exc:
                    skipped.append((ref.name, task_name, str(exc)))
                    continue
                pair_id = (ref.name, ref.checkpoint, json.dumps(ref.options, sort_keys=True, default=str), task_name,
                           json.dumps(task_ref.options, sort_keys=True, default=str))  # fmt: skip
                if pair_id not in pairs:
                    try:  # a variant that cannot apply to its model is refused here, when it is built
                        pairs[pair_id] = new_pair(ref, task, dict(task_ref.options), suite, build=build)
                    except IncompatibleError as exc:
                        skipped.append((ref.name, task_name, str(exc)))
                        continue
                pair = pairs[pair_id]
                for metric_ref in group.metrics:
                    metric = metrics.get(metric_ref.name)
                    if task.modality not in metric.modalities:
                        why = f"{metric_ref.name} measures {' and '.join(sorted(metric.modalities))} tasks"
                        skipped.append((ref.name, f"{task_name} ({metric_ref.name})", why))
                        continue
                    job = new_job(pair, task, metric(), metric.Params(**metric_ref.params), suite, depends)
                    if all(other.key != job.key for other in pair.jobs):
                        pair.jobs.append(job)
    if not pairs:
        reasons = "; ".join(dict.fromkeys(why for _, _, why in skipped)) or "the suite names no (model, task) pair"
        raise PlanError(f"nothing to run: no model in the suite can run on its tasks ({reasons})")
    keys = [job.key for pair in pairs.values() for job in pair.jobs]
    stored = set() if no_cache else store.stored_keys(keys)
    return Plan(suite, list(pairs.values()), stored, skipped)


def new_pair(ref: ModelRef, task: Task, task_options: dict[str, Any], suite: Suite, *, build: bool = True) -> Pair:
    """A (model, task) pair: the model's fingerprint (loading it only when neither its source nor an
    earlier build of the same files can tell without, and ``build`` allows it), and the examples it is
    evaluated on (every one, or the run's seeded subset)."""
    model = None
    fingerprint = fingerprint_model(ref.name, task, checkpoint=ref.checkpoint, **ref.options)
    unbuilt = fingerprint is None and not build
    if unbuilt:  # a stand-in no stored job has: the pair's jobs read as not stored
        fingerprint = "unbuilt-" + key_of(name=ref.name, checkpoint=ref.checkpoint, options=ref.options)[:8]
    elif fingerprint is None:
        model = load_model(ref.name, task, checkpoint=ref.checkpoint, **ref.options)
        fingerprint = model.fingerprint
        remember_fingerprint(ref.name, task, fingerprint, checkpoint=ref.checkpoint, **ref.options)
    total = len(task.load())
    subset = stats.subset_indices(total, suite.limit, suite.seed)
    indices = np.arange(total) if subset is None else subset
    identity = ModelIdentity(ref.name, fingerprint, ref.checkpoint, dict(ref.options))
    examples = ExampleSet(total, len(indices), index_digest(indices),
                        None if subset is None else {"limit": int(suite.limit or 0), "seed": suite.seed})  # fmt: skip
    examples_key = key_of(kind="clean", model=identity.name, model_fp=fingerprint, task_fp=task.fingerprint,
                          indices=examples.indices)  # fmt: skip
    task_identity = TaskIdentity(task.name, task.fingerprint, task_options, dict(task.load().excluded))
    return Pair(ref, identity, task_identity, examples, subset, examples_key,
                model=model, unbuilt=unbuilt)  # fmt: skip


def new_job(pair: Pair, task: Task, metric: Any, params: Any, suite: Suite,
            depends: dict[tuple[str, str, str], dict[str, Any]]) -> Job:  # fmt: skip
    """The job of ``metric`` on ``pair``, its parameters resolved and its spec complete."""
    try:
        metric.check(task, params)
    except ValueError as exc:
        raise PlanError(f"metric {metric.name} on {task.name}: {exc}") from exc
    n, cut = pair.examples.count, suite.limit is not None  # --limit N: the costly metrics take all N, even N >= n
    resolved = metric.resolve(params, task, n=n, cut=cut)
    values = resolved.model_dump(mode="json")
    picked = metric.evaluated(resolved, n, suite.seed)
    examples = pair.examples
    if picked is not None:
        indices = (np.arange(n) if pair.subset is None else pair.subset)[picked]
        examples = ExampleSet(examples.total, len(indices), index_digest(indices), examples.subset)
    reads = (metric.name, json.dumps(values, sort_keys=True), task.fingerprint)
    if reads not in depends:
        depends[reads] = metric.depends(resolved, task)
    spec = JobSpec(
        model=pair.identity, task=pair.task_identity, examples=examples,
        metric=MetricSpec(metric.name, metric.version, values), seed=suite.seed, resamples=suite.resamples,
        depends=depends[reads],
        device=device_spec(suite.device) if "device" in metric.needs else None,
        country=suite.country if "country" in metric.needs else None,
    )  # fmt: skip
    return Job(pair.name, task.name, metric.name, values, spec.key, spec)


def device_spec(name: str) -> dict[str, Any]:
    """What a device-bound figure depends on: the device and the torch, CUDA, driver and codecarbon versions."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        codecarbon = version("codecarbon")
    except PackageNotFoundError:
        codecarbon = "absent"
    return {**devices.details(devices.resolve(name)), "codecarbon": codecarbon}


def evaluate_pair(
    work: tuple[Pair, list[Job]], settings: dict[str, Any], reporter: Reporter
) -> Iterator[Outcome | Examples | Figure]:
    """Run a pair's pending jobs: yields each job's per-example outputs and figures, then its outcome;
    last, the pair's clean per-example outputs."""
    pair, jobs = work
    reporter.pair_started(pair.name, pair.task)
    task = pair.get_task()
    split = task.load() if pair.subset is None else task.load().subset(pair.subset)
    device = settings["device"]
    provenance = {
        **settings["versions"],
        "device": devices.describe(device),
        "seed": settings["seed"],
        "batch_size": settings["batch_size"],
        "resamples": settings["resamples"],
        "limit": settings["limit"],
        "dtype": "float32",
        "model_fingerprint": pair.fingerprint,
        "task_fingerprint": task.fingerprint,
        "task_options": pair.task_options,
        **({"task_excluded": pair.task_identity.excluded} if pair.task_identity.excluded else {}),
        "model_checkpoint": pair.ref.checkpoint,
        "model_options": pair.ref.options,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    model = pair.load()
    if model.fingerprint != pair.fingerprint:
        raise RuntimeError(
            f"{pair.name}: its weights once loaded are not those it was planned with (fingerprint {model.fingerprint}, "
            f"planned {pair.fingerprint}): was its weights file replaced during the run?"
        )
    ctx = EvalContext(
        model, task, split, device, settings["batch_size"], settings["seed"], settings["resamples"],
        settings["run_id"], provenance, settings["country"], on_batch=reporter.batch, on_stage=reporter.stage,
        stored=pair.stored_clean, workers=settings["workers"],
    )  # fmt: skip
    clean_saved = False
    for job in jobs:
        metric = metrics.get(job.metric)()
        params = metric.Params(**job.params)
        ctx.metric_params = job.params
        reporter.job_started(job)
        started = time.perf_counter()
        try:
            records = metric.compute(ctx, params)
        except Exception as exc:  # one metric failing must not stop the others
            log.info(  # the run's failures are returned (the command prints each once, at the end)
                "%s on %s, %s failed: %s",
                job.model,
                job.task,
                job.metric,
                exc,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            ctx.outputs.clear()
            ctx.figures.clear()
            yield Outcome(pair, job, seconds=time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
            continue
        if "clean" in ctx.__dict__ and not clean_saved:  # before the job, so a kill in between loses neither
            yield Examples(pair, pair.examples_key, "clean", task.fingerprint, ctx.examples())
            clean_saved = True
        for kind, frame in ctx.outputs.items():
            yield Examples(pair, key_of(kind=kind, job=job.key), kind, task.fingerprint, frame, job.key)
        for name, png in ctx.figures.items():
            yield Figure(pair, job, name, png)
        ctx.outputs.clear()
        ctx.figures.clear()
        yield Outcome(pair, job, records, time.perf_counter() - started, provenance=provenance)
    release(pair, model)


def release(pair: Pair, model: Model) -> None:
    """The pair's model leaves the device once its jobs are done, so that device memory does not grow
    across a suite (the next pair loads its own model)."""
    model.to("cpu")
    pair.model = None
    import torch

    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def run(
    suite: Suite,
    store: Store,
    *,
    no_cache: bool = False,
    executor: Executor | None = None,
    reporter: Reporter | None = None,
    argv: list[str] | None = None,
    planned: Plan | None = None,
) -> RunResult:
    started = time.perf_counter()
    reporter = reporter or NullReporter()
    executor = executor or make_executor(suite.executor, suite.ray_address)
    device = devices.resolve(suite.device)
    the_plan = planned or plan(suite, store, no_cache=no_cache)
    run_id = new_run_id()
    store.start_run(run_id, suite.name, argv or [], __version__)
    settings = {
        "device": device, "seed": suite.seed, "batch_size": suite.batch_size, "resamples": suite.resamples,
        "limit": suite.limit, "run_id": run_id, "versions": library_versions(), "country": suite.country,
        "workers": default_workers() if suite.workers is None else suite.workers,
    }  # fmt: skip
    work = [(pair, the_plan.pending(pair)) for pair in the_plan.pairs]
    work = [(pair, jobs) for pair, jobs in work if jobs]
    for pair, jobs in work:  # metrics that need only predictions reuse stored ones instead of running the model
        if not no_cache and any("predictions" in metrics.get(job.metric).needs for job in jobs):
            pair.stored_clean = store.examples_by_key(pair.examples_key)
    cached = len(the_plan.jobs) - sum(len(jobs) for _, jobs in work)
    reporter.start(total=len(the_plan.jobs), cached=cached)
    measured, failures, status = 0, [], "failed"
    meter = start_meter(suite.country) if work else None
    local = isinstance(executor, InProcessExecutor)  # a remote worker reports through the driver
    job_fn = partial(evaluate_pair, settings=settings, reporter=reporter if local else NullReporter())
    finished: set[str] = set()

    def needs(item: tuple[Pair, list[Job]]) -> Needs:
        exclusive = any("device" in metrics.get(job.metric).needs for job in item[1])
        return Needs(gpu=device.type == "cuda", exclusive=exclusive)

    def on_error(item: tuple[Pair, list[Job]], exc: BaseException) -> list[Outcome]:
        """A pair that failed as a whole (its model did not load, its worker died): each of its jobs
        not yet finished is recorded as failed with the error, and the run goes on."""
        log.info("%s on %s failed: %s", item[0].name, item[0].task, exc)  # returned, as above
        return [Outcome(item[0], job, error=f"{type(exc).__name__}: {exc}") for job in item[1]
                if job.key not in finished]  # fmt: skip

    try:
        attempts = [work]
        for attempt in range(suite.retries + 1):
            failures = []
            for item in executor.map(job_fn, attempts[-1], needs=needs, on_error=on_error):
                if isinstance(item, Examples):
                    store.save_examples(
                        item.key, item.frame, model=item.pair.name, task=item.pair.task, kind=item.kind,
                        fingerprints=(item.pair.fingerprint, item.task_fingerprint), run_id=run_id,
                        job_key=item.job_key,
                    )  # fmt: skip
                    continue
                if isinstance(item, Figure):
                    store.save_figure(item.job.key, item.name, item.png, model=item.pair.name, task=item.pair.task,
                                      run_id=run_id)  # fmt: skip
                    continue
                if item.error is None:
                    job = item.job
                    row = JobRow(
                        job.key,
                        run_id,
                        job.model,
                        job.task,
                        job.metric,
                        job.params,
                        job.spec.model.fingerprint,
                        job.spec.task.fingerprint,
                        job.spec,
                        item.provenance,
                    )
                    store.save_job(row, item.records, item.seconds)
                    finished.add(job.key)
                    measured += 1
                else:
                    failures.append(item)
                reporter.job_done(item.job, item.error)
            if not failures or attempt == suite.retries:
                break
            retry: dict[int, tuple[Pair, list[Job]]] = {}
            for failure in failures:  # each failed job again, grouped by pair
                retry.setdefault(id(failure.pair), (failure.pair, []))[1].append(failure.job)
            log.warning("retrying %d failed jobs (attempt %d of %d)", len(failures), attempt + 2, suite.retries + 1)
            attempts.append(list(retry.values()))
        status = "failed" if failures else "complete"
    except KeyboardInterrupt:
        status = "interrupted"  # what finished is stored; the rest is measured by the next run
        raise
    finally:
        cost = run_cost(meter, time.perf_counter() - started, measured=bool(work))
        reporter.finish()
        try:
            failed = [{"model": f.job.model, "task": f.job.task, "metric": f.job.metric, "key": f.job.key,
                       "error": f.error} for f in failures]  # fmt: skip
            store.finish_run(run_id, status, cost, failed)
        except StoreError as exc:  # the error that stopped the run (a full disk) says more than this one
            log.error("the run's end could not be stored: %s", exc)
    records = store.records(keys=[job.key for job in the_plan.jobs])
    return RunResult(run_id, records, measured, cached, failures, cost["seconds"], cost)


def start_meter(country: str) -> energy.Meter | None:
    """codecarbon's tracker over the whole run; a tracker that cannot start costs the run nothing but
    its energy figure (logged)."""
    try:
        return energy.Meter(country, measure_seconds=15).start()
    except Exception as exc:  # codecarbon's hardware probing raises what the platform gives it
        log.warning("the run's energy is not tracked: codecarbon could not start (%s)", exc)
        return None


def run_cost(meter: energy.Meter | None, seconds: float, *, measured: bool) -> dict[str, Any]:
    """The run's provenance of cost: wall time always; codecarbon's energy and carbon when the run
    measured something (a run served from the store is not tracked: starting the tracker costs more
    than the run)."""
    cost: dict[str, Any] = {"seconds": round(seconds, 3), "energy": None}
    if meter is None:
        cost["energy_missing"] = "no job was measured" if not measured else "codecarbon could not start"
        return cost
    try:
        cost["energy"] = meter.stop().to_dict()
    except Exception as exc:  # as above: the run's results matter more than its energy figure
        log.warning("the run's energy is not tracked: codecarbon failed (%s)", exc)
        cost["energy_missing"] = f"codecarbon failed: {exc}"
    return cost
