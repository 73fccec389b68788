"""Timing a model's forward pass the way timm's benchmark and MLPerf's offline and single-stream
scenarios do: warm-up first, the device synchronised around every timed step, the inputs already on
the device, under ``torch.inference_mode()``, the median of repeats reported with its spread."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import torch

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def supports(device: torch.device, precision: str) -> bool:
    """Whether autocast runs ``precision`` on this device (fp32 always)."""
    if precision == "fp32":
        return True
    if device.type == "cuda":
        return precision == "fp16" or torch.cuda.is_bf16_supported()
    return device.type == "cpu" and precision == "bf16"


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    dtype = PRECISIONS[precision]
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def timed(step: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> np.ndarray:
    """Seconds of each of ``repeats`` calls of ``step`` after ``warmup`` untimed ones, synchronised."""
    for _ in range(warmup):
        step()
    synchronize(device)
    seconds = np.empty(repeats)
    for i in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        step()
        synchronize(device)
        seconds[i] = time.perf_counter() - started
    return seconds


def batch_of(inputs: torch.Tensor, size: int) -> torch.Tensor:
    """``size`` examples of real data (repeated when there are fewer)."""
    if len(inputs) >= size:
        return inputs[:size]
    return inputs.repeat((size + len(inputs) - 1) // len(inputs), *([1] * (inputs.ndim - 1)))[:size]


def throughput(module: torch.nn.Module, inputs: torch.Tensor, batch_size: int, device: torch.device, *,
               precision: str = "fp32", warmup: int = 3, repeats: int = 5) -> np.ndarray:  # fmt: skip
    """Samples per second of each repeat at ``batch_size`` (offline scenario)."""
    batch = batch_of(inputs, batch_size).to(device)

    def step() -> None:
        with torch.inference_mode(), autocast(device, precision):
            module(batch)

    return batch_size / timed(step, device, warmup, repeats)


def latency(module: torch.nn.Module, inputs: torch.Tensor, device: torch.device, *, queries: int = 200,
            warmup: int = 10, precision: str = "fp32") -> np.ndarray:  # fmt: skip
    """Seconds per query at batch size 1, one query per example in turn (single-stream scenario)."""
    samples = [x[None].to(device) for x in batch_of(inputs, queries)]
    position = iter(range(warmup + queries))

    def step() -> None:
        with torch.inference_mode(), autocast(device, precision):
            module(samples[next(position) % queries])

    return timed(step, device, warmup, queries)


def percentiles(seconds: np.ndarray) -> dict[str, float]:
    """Latency summary in milliseconds: p50, p90, p95, p99 (linear interpolation), mean, std."""
    ms = np.asarray(seconds, dtype=float) * 1000
    p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
    return {"p50": p50, "p90": p90, "p95": p95, "p99": p99, "mean": ms.mean(), "std": ms.std(ddof=1)}
