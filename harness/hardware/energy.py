"""Energy and carbon of a stretch of work through codecarbon's offline tracker (never the online one,
which looks the location up over the network). codecarbon measures the CPU through RAPL or
powermetrics where the machine offers them and otherwise estimates it from the CPU's load and TDP; it
measures GPUs through NVML and always estimates RAM. The result says which."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

MEASURED_CPU_MODES = {"intel_rapl", "intel_power_gadget", "apple_powermetrics"}


@dataclass(frozen=True)
class Energy:
    kwh: float
    cpu_kwh: float
    gpu_kwh: float
    ram_kwh: float
    kg_co2: float
    seconds: float
    method: str  # "measured" (CPU by RAPL or powermetrics, GPU by NVML) or "estimated"
    detail: str  # how each part was obtained, as codecarbon reports it
    country: str


def measure(step: Callable[[], int], *, min_seconds: float, country: str) -> tuple[Energy, int]:
    """Run ``step`` (which returns how many samples it processed) again and again for at least
    ``min_seconds`` under the tracker; return the energy and the samples processed."""
    from codecarbon import OfflineEmissionsTracker

    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as folder:  # codecarbon's files stay out of the working directory
        tracker = OfflineEmissionsTracker(country_iso_code=country, save_to_file=False, output_dir=folder,
                                          log_level="error", measure_power_secs=1, tracking_mode="process")  # fmt: skip
        tracker.start()
        started, samples = time.perf_counter(), 0
        try:
            while time.perf_counter() - started < min_seconds:
                samples += step()
        finally:
            kg = tracker.stop()
        data = tracker.final_emissions_data
    modes = {type(h).__name__: getattr(h, "_mode", None) for h in getattr(tracker, "_hardware", [])}
    cpu_mode = modes.get("CPU")
    measured = cpu_mode in MEASURED_CPU_MODES or ("GPU" in modes and float(data.gpu_energy) > 0)
    detail = ", ".join(f"{part}: {mode or 'estimated'}" for part, mode in modes.items())
    energy = Energy(float(data.energy_consumed), float(data.cpu_energy), float(data.gpu_energy),
                    float(data.ram_energy), float(kg or 0.0), time.perf_counter() - started,
                    "measured" if measured else "estimated", detail, country)  # fmt: skip
    return energy, samples
