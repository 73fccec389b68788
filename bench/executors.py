"""The Ray executor's cost per job and what it gains from more CPUs.

Workload: many small jobs, the quick suite (accuracy and calibration of the ten zoo models, 20 jobs)
at ``--seeds`` seeds (each seed is a new set of jobs: the bootstrap and the subset are seeded), on a
seeded subset of ``--limit`` examples per task, cold (a new store each time). Configurations, each run
``--repeats`` times in turn and summarised by the median:

- ``local``: the in-process executor (one process; torch uses every core for its own ops);
- ``ray-1cpu`` and ``ray-Ncpu``: the Ray executor on a local Ray instance started by the run with 1 and
  with N CPUs (N = this machine's cores), one CPU per job, so up to N jobs run at once.

Reported: wall time of each, the Ray executor's overhead per job ((ray-1cpu - local) / jobs; it
includes starting Ray, about 5 s, spread over the jobs), and the speed-up of N CPUs over 1. Every run is
``harness.runner.run`` in this process with a fresh store, so planning and storing are included.

    python bench/executors.py           # writes bench/results/ray.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import ray

from harness import __version__, runner
from harness.config import load_suite
from harness.executors import InProcessExecutor, RayExecutor
from harness.store import Store

RESULTS = Path(__file__).parent / "results"


def timed(executor_for: callable, seeds: int, limit: int) -> tuple[float, int]:
    executor = executor_for()
    started = time.perf_counter()
    jobs = 0
    with tempfile.TemporaryDirectory() as folder, Store(folder) as store:
        for seed in range(seeds):
            suite = load_suite("quick").with_overrides(seed=seed, limit=limit, resamples=200)
            result = runner.run(suite, store, executor=executor)
            assert not result.failures, result.failures
            jobs += result.measured
    seconds = time.perf_counter() - started
    if ray.is_initialized():
        ray.shutdown()
    return seconds, jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    configs = {
        "local": InProcessExecutor,
        "ray-1cpu": lambda: RayExecutor(num_cpus=1),
        f"ray-{cpus}cpu": lambda: RayExecutor(num_cpus=cpus),
    }
    times: dict[str, list[float]] = {name: [] for name in configs}
    jobs = 0
    for _ in range(args.repeats):
        for name, make in configs.items():
            seconds, jobs = timed(make, args.seeds, args.limit)
            times[name].append(seconds)
            print(f"{name}: {seconds:.1f} s for {jobs} jobs", flush=True)
    median = {name: statistics.median(t) for name, t in times.items()}
    result = {
        "what": "quick suite x seeds, cold: in-process executor vs Ray executor on a local instance",
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
        "harness": __version__,
        "ray": ray.__version__,
        "cpus": cpus,
        "jobs": jobs,
        "seeds": args.seeds,
        "limit": args.limit,
        "repeats": args.repeats,
        "seconds": times,
        "median_seconds": median,
        "ray_overhead_per_job_s": round((median["ray-1cpu"] - median["local"]) / jobs, 3),
        "ray_vs_local": round(median["ray-1cpu"] / median["local"], 3),
        f"speedup_{cpus}cpu_vs_1cpu": round(median["ray-1cpu"] / median[f"ray-{cpus}cpu"], 3),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ray.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("seconds", "method")}, indent=1))


if __name__ == "__main__":
    main()
