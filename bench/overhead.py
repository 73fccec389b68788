"""The harness's own overhead, and the time of the quick suite cold and warm.

1. Clean accuracy of a zoo model on the full Fashion-MNIST test set through ``harness.runner.run``
   (in-process, cache off: plan, model load and fingerprint, clean pass, bootstrap CIs, store writes)
   against a bare torch loop over the same tensors (forward pass, argmax, accuracy). Both are timed
   ``--repeats`` times, alternately, after a warm-up; the figure is the ratio of the medians.
   Target: <= 1.10.
2. ``harness run --suite quick`` as a user runs it (a subprocess), into a new store (cold) and again
   (warm, served from the store).

    python bench/overhead.py            # writes bench/results/overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from harness import __version__, runner
from harness.config import load_suite
from harness.hardware.devices import describe
from harness.models import load_model
from harness.store import Store
from harness.tasks import get_task

RESULTS = Path(__file__).parent / "results"


def bare_loop(module: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int) -> float:
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            correct += int(
                (module(inputs[start : start + batch_size]).argmax(1) == labels[start : start + batch_size]).sum()
            )
    return correct / len(inputs)


def interleaved(first, second, repeats: int) -> tuple[list[float], list[float], object, object]:
    """Time two functions alternately (after one warm-up call each), so drifts in machine speed
    (frequency, other load) fall on both alike."""
    results = [first(), second()]
    times: list[list[float]] = [[], []]
    for _ in range(repeats):
        for i, fn in enumerate((first, second)):
            started = time.perf_counter()
            results[i] = fn()
            times[i].append(time.perf_counter() - started)
    return times[0], times[1], results[0], results[1]


def overhead(model_name: str, repeats: int, batch_size: int) -> dict:
    task = get_task("fashion-mnist")
    split = task.load()
    model = load_model(model_name, task)
    module = model.module.eval()
    suite = load_suite("quick").with_overrides(
        models=[model_name], tasks=["fashion-mnist"], metrics=["accuracy"], batch_size=batch_size, device="cpu"
    )
    with tempfile.TemporaryDirectory() as tmp, Store(tmp) as store:

        def through_harness() -> float:
            result = runner.run(suite, store, no_cache=True)
            return next(r.value for r in result.records if r.metric == "accuracy.top1" and r.slice == "overall")

        def bare() -> float:
            return bare_loop(module, split.inputs, split.labels, batch_size)

        bare_times, harness_times, bare_accuracy, harness_accuracy = interleaved(bare, through_harness, repeats)
    assert abs(harness_accuracy - bare_accuracy) < 1e-9, (harness_accuracy, bare_accuracy)
    bare, harness = statistics.median(bare_times), statistics.median(harness_times)
    return {
        "model": model_name,
        "examples": len(split),
        "batch_size": batch_size,
        "repeats": repeats,
        "accuracy": bare_accuracy,
        "bare_torch_seconds_median": round(bare, 4),
        "harness_seconds_median": round(harness, 4),
        "bare_torch_seconds": [round(t, 4) for t in bare_times],
        "harness_seconds": [round(t, 4) for t in harness_times],
        "ratio": round(harness / bare, 3),
        "target_ratio": 1.10,
    }


def quick_suite() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "harness", "run", "--suite", "quick", "--quiet", "--store", tmp]
        times = []
        for _ in range(4):  # cold, then three warm runs (answered from the store, harness.warm)
            started = time.perf_counter()
            subprocess.run(cmd, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            times.append(time.perf_counter() - started)
    warm = statistics.median(times[1:])
    return {
        "cold_seconds": round(times[0], 2),
        "warm_seconds": round(warm, 2),
        "warm_runs_seconds": [round(t, 2) for t in times[1:]],
        "warm_over_cold": round(warm / times[0], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="zoo:fmnist-cnn")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=RESULTS / "overhead.json")
    parser.add_argument("--quick-only", action="store_true", help="only the quick suite cold and warm (merged)")
    args = parser.parse_args()
    if args.quick_only:
        figures = json.loads(args.out.read_text()) if args.out.exists() else {}
        figures["quick_suite"] = quick_suite() | {"date": datetime.now(UTC).isoformat(timespec="seconds")}
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
        print(json.dumps(figures["quick_suite"], indent=2))
        return
    figures = {
        "command": "python bench/overhead.py",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe(torch.device("cpu")),
        "versions": runner.library_versions() | {"harness": __version__},
        "overhead": overhead(args.model, args.repeats, args.batch_size),
        "quick_suite": quick_suite(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
