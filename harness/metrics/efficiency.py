"""What a model costs to run on the evaluation's device: throughput over a sweep of batch sizes
(offline scenario), latency percentiles at batch size 1 (single-stream), peak device memory (CUDA),
parameters, weight size and FLOPs per sample. Every record names its device in the provenance and
stores the settings it was measured with; the device joins the cache key."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness import stats
from harness.measures import Measure
from harness.metrics.base import Metric
from harness.registry import metrics

if TYPE_CHECKING:
    from harness.context import EvalContext
    from harness.records import Record
    from harness.tasks.base import Task

log = logging.getLogger(__name__)
PRECISIONS = ("fp32", "bf16", "fp16")  # (harness.hardware.timing maps them to dtypes; torch is not imported here)


class EfficiencyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    batch_sizes: tuple[int, ...] = (1, 8, 32, 128, 256)
    precisions: tuple[str, ...] = Field(("fp32",), description="fp32, bf16, fp16 (autocast, where supported)")
    warmup: int = Field(3, ge=0)
    repeats: int = Field(5, ge=1)
    latency_queries: int = Field(200, ge=10)
    energy_seconds: float = Field(5.0, ge=0, description="steady inference under codecarbon; 0 to skip energy")
    energy_batch_size: int = Field(32, ge=1)
    channels_last: bool = Field(False, description="image models: NHWC memory format for weights and inputs")
    compile: bool = Field(False, description="time torch.compile(model); compilation happens in the warm-up")

    @field_validator("precisions")
    @classmethod
    def _known(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [v for v in values if v not in PRECISIONS]
        if unknown:
            raise ValueError(f"unknown precision {unknown[0]!r}; expected one of {list(PRECISIONS)}")
        return values

    @model_validator(mode="after")
    def _compile_warms_up(self) -> EfficiencyParams:
        if self.compile and self.warmup < 1:
            raise ValueError("compile needs warmup >= 1: the first call compiles and must not be timed")
        return self

    @property
    def variant(self) -> str:
        """What the slice adds to the precision: ``+channels_last``, ``+compile``."""
        return "".join(f"+{name}" for name in ("channels_last", "compile") if getattr(self, name))


def latency_statistics(ms: np.ndarray) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The latency summary of ``timing.percentiles`` as statistics of bootstrap rows of queries, so
    that each figure gets its interval."""
    return {
        **{f"p{q}": lambda rows, q=q: np.percentile(ms[rows], q, axis=1) for q in (50, 90, 95, 99)},
        "mean": lambda rows: ms[rows].mean(1),
        "std": lambda rows: ms[rows].std(1, ddof=1),
    }


def out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


@metrics.register("efficiency", "throughput per batch size, latency percentiles, peak memory, params, FLOPs")
class Efficiency(Metric):
    name = "efficiency"
    category = "efficiency"
    measures = (
        *(Measure(f"efficiency.{name}", "lower", "efficiency") for name in
          ("params", "weights_mb", "flops_per_sample", "macs_per_sample")),
        Measure("efficiency.throughput", "higher", "efficiency", ("batch", "precision")),
        Measure("efficiency.best_throughput", "higher", "efficiency", ("precision",)),
        *(Measure(f"efficiency.latency_{name}_ms", "lower", "efficiency", ("precision",))
          for name in ("p50", "p90", "p95", "p99", "mean", "std")),
        *(Measure(f"efficiency.{name}", "lower", "efficiency", ("precision",)) for name in
          ("peak_memory_mb", "energy_wh_per_1k", "carbon_g_per_1k")),
    )  # fmt: skip
    needs = frozenset({"device", "country"})
    Params: type[BaseModel] = EfficiencyParams

    def check(self, task: Task, params: BaseModel) -> None:
        assert isinstance(params, EfficiencyParams)
        if params.channels_last and len(task.input_shape) != 3:
            raise ValueError(f"channels_last needs image inputs (C, H, W); {task.name} has shape {task.input_shape}")

    def compute(self, ctx: EvalContext, params: BaseModel) -> list[Record]:
        import torch

        from harness.hardware import devices, size, timing

        assert isinstance(params, EfficiencyParams)
        device = ctx.device
        module = ctx.model.to(device).module.eval()
        inputs = ctx.split.take(np.arange(min(max(params.batch_sizes), len(ctx.split))), workers=ctx.workers)
        if params.channels_last:  # on a copy: the model's other metrics keep its own layout
            module = copy.deepcopy(module).to(memory_format=torch.channels_last)
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        timed = torch.compile(module) if params.compile else module
        settings = {"warmup": params.warmup, "repeats": params.repeats, "threads": torch.get_num_threads(),
                    "device": devices.details(device), "channels_last": params.channels_last,
                    "compile": params.compile}  # fmt: skip
        out: list[Record] = []

        flops = size.flops_per_sample(module, inputs[0])
        out.append(ctx.record("efficiency.params", stats.exact(size.parameters(module))))
        out.append(ctx.record("efficiency.weights_mb", stats.exact(size.weight_bytes(module) / 2**20)))
        out.append(ctx.record("efficiency.flops_per_sample", stats.exact(flops)))
        out.append(ctx.record("efficiency.macs_per_sample", stats.exact(flops / 2)))
        for precision in params.precisions:
            if not timing.supports(device, precision):
                continue  # not a figure to report on this device, and not a default
            best, oom_at, where = 0.0, None, f"precision={precision}{params.variant}"
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            for batch_size in params.batch_sizes:
                try:
                    rates = timing.throughput(timed, inputs, batch_size, device, precision=precision,
                                              warmup=params.warmup, repeats=params.repeats)  # fmt: skip
                except RuntimeError as exc:
                    if not out_of_memory(exc):
                        raise
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    oom_at = batch_size
                    break  # larger batches will not fit either: the best is from the sizes below
                median = float(np.median(rates))
                best = max(best, median)
                out.append(
                    ctx.record(
                        "efficiency.throughput",
                        stats.spread(median, rates),
                        slice=f"batch={batch_size},precision={precision}{params.variant}",
                        params={
                            **settings,
                            "batch_size": batch_size,
                            "precision": precision,
                            "unit": "samples/s",
                            "interval": "min-max of repeats",
                        },
                    )
                )
            if best:
                out.append(
                    ctx.record(
                        "efficiency.best_throughput",
                        stats.exact(best),
                        slice=where,
                        params={**settings, "out_of_memory_at": oom_at},
                        flags=(f"out-of-memory-at-batch={oom_at}",) if oom_at else (),
                    )
                )
            seconds = timing.latency(timed, inputs, device, queries=params.latency_queries, precision=precision)
            for name, statistic in latency_statistics(seconds * 1000).items():
                estimate = stats.bootstrap(statistic, len(seconds), **ctx.bootstrap_options)
                latency_params = {**settings, "queries": params.latency_queries, "batch_size": 1}
                out.append(ctx.record(f"efficiency.latency_{name}_ms", estimate, slice=where, params=latency_params))
            if params.energy_seconds > 0:
                out += self._energy(ctx, params, timed, inputs, precision, settings)
            largest = max((b for b in params.batch_sizes if oom_at is None or b < oom_at), default=None)
            if largest is not None:
                out += self._peak_memory(ctx, params, module, inputs, precision, largest, settings)
        return out

    def _peak_memory(self, ctx: EvalContext, params: EfficiencyParams, module, inputs, precision: str,
                     batch_size: int, settings: dict) -> list[Record]:  # fmt: skip
        """Peak memory of inference at the largest batch size that ran: CUDA's allocator statistics
        over the sweep, or on the CPU the resident memory of a measuring child process (which runs the
        uncompiled model: a compiled one does not travel between processes)."""
        import torch

        from harness.hardware import memory, timing

        device = ctx.device
        info = {**settings, "batch_size": batch_size, "unit": "MiB"}
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device) / 2**20
            info["method"] = "torch.cuda.max_memory_allocated after a reset, over the sweep, latency and energy runs"
        elif device.type == "cpu":
            try:
                measured = memory.peak_cpu_memory(module, timing.batch_of(inputs, batch_size), precision=precision)
            except RuntimeError as exc:
                log.warning("%s: peak CPU memory not measured: %s", ctx.model.name, exc)
                return []
            peak = measured.peak_mb
            info.update(method=f"peak resident memory of a child process above torch imported ({measured.method})",
                        baseline_mb=round(measured.baseline_mb, 1), loaded_mb=round(measured.loaded_mb, 1))  # fmt: skip
        else:
            return []  # MPS keeps no peak statistics
        return [
            ctx.record(
                "efficiency.peak_memory_mb",
                stats.exact(peak),
                slice=f"precision={precision}{params.variant}",
                params=info,
            )
        ]

    def _energy(self, ctx: EvalContext, params: EfficiencyParams, module, inputs, precision: str,
                settings: dict) -> list[Record]:  # fmt: skip
        """Wh and grams CO2-eq per 1,000 inferences over a window of steady inference."""
        import torch

        from harness.hardware import energy, timing

        device = ctx.device
        batch = timing.batch_of(inputs, params.energy_batch_size).to(device)

        def step() -> int:
            with torch.inference_mode(), timing.autocast(device, precision):
                module(batch)
            timing.synchronize(device)
            return len(batch)

        used, samples = energy.measure(step, min_seconds=params.energy_seconds, country=ctx.country)
        info = {**settings, "batch_size": params.energy_batch_size, "window_s": round(used.seconds, 2),
                "samples": samples, "method": used.method, "detail": used.detail, "country": used.country,
                "cpu_wh_per_1k": used.cpu_kwh * 1e6 / samples, "gpu_wh_per_1k": used.gpu_kwh * 1e6 / samples,
                "ram_wh_per_1k": used.ram_kwh * 1e6 / samples}  # fmt: skip
        flags = ("energy-estimated",) if used.method == "estimated" else ()
        wh = used.kwh * 1e6 / samples  # kWh -> Wh (x1000), per sample -> per 1,000 (x1000)
        grams = used.kg_co2 * 1e6 / samples
        where = {"precision": f"{precision}{params.variant}"}
        return [ctx.record(f"efficiency.{name}", stats.exact(value, samples), slice=where, params=info, flags=flags)
                for name, value in (("energy_wh_per_1k", wh), ("carbon_g_per_1k", grams))]  # fmt: skip
