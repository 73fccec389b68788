"""Choosing a device and describing it for provenance."""

from __future__ import annotations

import os
import platform
from functools import cache

import torch

from harness.errors import HarnessError


class DeviceError(HarnessError, ValueError):
    """A device that is unknown or not available on this machine."""


def available() -> list[str]:
    """Every device this machine can run on: ``cpu``, each ``cuda:N``, ``mps``."""
    names = ["cpu", *(f"cuda:{i}" for i in range(torch.cuda.device_count()) if torch.cuda.is_available())]
    return names + (["mps"] if torch.backends.mps.is_available() else [])


def expand(spec: str) -> list[str]:
    """A device list as given to ``--device``: ``cpu,cuda`` -> each in turn, ``all`` -> every available
    device; each is checked, so an unavailable one fails before any work."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    names = [d for n in names for d in (available() if n == "all" else [n])]
    if not names:
        raise DeviceError(f"no device in {spec!r}: expected auto, all, cpu, cuda, cuda:N or mps")
    for name in names:
        resolve(name)
    return names


def resolve(name: str) -> torch.device:
    """``auto`` -> the first GPU if there is one, else the CPU; anything else must be available."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "all" or "," in name:
        raise DeviceError(f"device {name!r} names several devices: run each (harness run --device does)")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(f"unknown device {name!r}: expected auto, cpu, cuda, cuda:N or mps") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {name!r} was asked for, but this machine has no usable CUDA GPU; use --device cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {name!r} was asked for, but MPS is not available here; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"unsupported device {name!r}: expected auto, cpu, cuda, cuda:N or mps")
    return device


@cache
def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(device: torch.device) -> str:
    """A one-line descriptor, e.g. ``cpu: AMD EPYC 7B13 (2 threads)`` or ``cuda:0: NVIDIA H100 80GB HBM3``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index}: {torch.cuda.get_device_name(index)}"
    if device.type == "cpu":
        return f"cpu: {cpu_name()} ({torch.get_num_threads()} threads of {os.cpu_count()} cores)"
    return str(device)


def _nvidia_driver() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # no NVML library or no driver: the descriptor says unknown
        return None


def details(device: torch.device) -> dict[str, str | int | float | None]:
    """Everything about the device that shapes a timing, for the records' reproducibility: the CPU
    model, cores and threads used, and for a GPU its name, memory, compute capability, driver and
    CUDA versions; always the torch version."""
    out: dict[str, str | int | float | None] = {
        "descriptor": describe(device),
        "cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        out.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   compute_capability=f"{props.major}.{props.minor}", cuda=torch.version.cuda,
                   driver=_nvidia_driver())  # fmt: skip
    elif device.type == "mps":
        out.update(gpu="Apple MPS", platform=platform.platform())
    return out
