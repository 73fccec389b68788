"""Energy and carbon of a stretch of work through codecarbon's offline tracker (never the online one,
which looks the location up over the network). codecarbon measures the CPU through RAPL or
powermetrics where the machine offers them and otherwise estimates it from the CPU's load and TDP; it
measures GPUs through NVML and always estimates RAM. The result says which."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

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

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)


DEFAULT_COUNTRY = "USA"
GRID_TABLE = "data/private_infra/global_energy_mix.json"  # inside the codecarbon package


@cache
def countries() -> dict[str, str]:
    """ISO 3166-1 alpha-3 code -> country name, for the countries codecarbon has a grid carbon
    intensity for."""
    import importlib.util

    # codecarbon's own table, read without importing codecarbon (which loads pandas and its hardware
    # probes: a third of a warm run); its DataSource where the file is not where codecarbon keeps it
    found = importlib.util.find_spec("codecarbon")
    table = Path(next(iter(found.submodule_search_locations or ()), "")) / GRID_TABLE if found else None
    if table is not None and table.is_file():
        mix = json.loads(table.read_text())
    else:
        from codecarbon.input import DataSource

        mix = DataSource().get_global_energy_mix_data()
    return {code: row["country_name"] for code, row in mix.items()}


def check_country(code: str) -> str:
    """The upper-cased code, or ValueError suggesting codes whose code or name is close."""
    import difflib

    code = code.strip().upper()
    known = countries()
    if code in known:
        return code
    by_name = {name.upper(): c for c, name in known.items()}
    close = difflib.get_close_matches(code, list(known), n=3, cutoff=0.6)
    close += [by_name[n] for n in difflib.get_close_matches(code, list(by_name), n=3, cutoff=0.6)]
    hint = f" Did you mean {' or '.join(f'{c} ({known[c]})' for c in dict.fromkeys(close))}?" if close else ""
    raise ValueError(f"unknown country {code!r}: expected an ISO 3166-1 alpha-3 code such as USA, FRA or IND.{hint}")


class Meter:
    """codecarbon's offline tracker around a stretch of work: ``start()``, the work, ``stop()``.

    Hardware detection costs about 1.5 s of CPU once per process (codecarbon matches the CPU's name
    against its TDP table); later meters in the same process start in milliseconds."""

    def __init__(self, country: str, *, measure_seconds: float = 1.0) -> None:
        from codecarbon import OfflineEmissionsTracker

        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        self.country = country
        self._folder = tempfile.TemporaryDirectory()  # codecarbon's files stay out of the working directory
        self._tracker = OfflineEmissionsTracker(
            country_iso_code=country, output_methods=[], output_dir=self._folder.name, log_level="error",
            measure_power_secs=measure_seconds, tracking_mode="process",
        )  # fmt: skip
        self._started = 0.0

    def start(self) -> Meter:
        self._tracker.start()
        self._started = time.perf_counter()
        return self

    def stop(self) -> Energy:
        try:
            kg = self._tracker.stop()
            seconds = time.perf_counter() - self._started
            data = self._tracker.final_emissions_data
        finally:
            self._folder.cleanup()
        modes = {type(h).__name__: getattr(h, "_mode", None) for h in getattr(self._tracker, "_hardware", [])}
        measured = modes.get("CPU") in MEASURED_CPU_MODES or ("GPU" in modes and float(data.gpu_energy) > 0)
        detail = ", ".join(f"{part}: {mode or 'estimated'}" for part, mode in modes.items())
        return Energy(float(data.energy_consumed), float(data.cpu_energy), float(data.gpu_energy),
                      float(data.ram_energy), float(kg or 0.0), seconds,
                      "measured" if measured else "estimated", detail, self.country)  # fmt: skip


def measure(step: Callable[[], int], *, min_seconds: float, country: str) -> tuple[Energy, int]:
    """Run ``step`` (which returns how many samples it processed) again and again for at least
    ``min_seconds`` under the tracker; return the energy and the samples processed."""
    meter = Meter(country).start()
    started, samples = time.perf_counter(), 0
    try:
        while time.perf_counter() - started < min_seconds:
            samples += step()
    finally:
        energy = meter.stop()
    return energy, samples
