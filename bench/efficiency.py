"""The timing overhead of the harness's throughput measurement (``harness.hardware.timing.throughput``:
inference mode, autocast context, device synchronisation around every step) against a bare loop of
forward passes on the same model, batch and device, measured alternately in the same run. The ratio
is of the samples per second each reports (target: the bare loop at most 1.05x the harness's).

    python bench/efficiency.py            # writes bench/results/efficiency.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from harness.hardware import timing
from harness.hardware.devices import describe, resolve
from harness.models import load_model
from harness.tasks import get_task

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="zoo:fmnist-cnn")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="timed forward passes per measurement")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--device", default="auto")
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "efficiency.json")
    args = parser.parse_args()

    device = resolve(args.device)
    task = get_task("fashion-mnist")
    module = load_model(args.model, task).to(device).module.eval()
    batch = task.load().inputs[: args.batch_size].to(device)

    def bare() -> float:
        with torch.inference_mode():
            module(batch)
            timing.synchronize(device)
            started = time.perf_counter()
            for _ in range(args.steps):
                module(batch)
            timing.synchronize(device)
            return args.batch_size * args.steps / (time.perf_counter() - started)

    def harness() -> float:
        rates = timing.throughput(module, batch, args.batch_size, device, warmup=1, repeats=args.steps)
        return float(args.batch_size * args.steps / (args.batch_size / rates).sum())  # the same total as bare

    results: dict[str, list[float]] = {"bare": [], "harness": []}
    for _ in range(args.rounds):
        results["bare"].append(bare())
        results["harness"].append(harness())
    bare_rate, harness_rate = statistics.median(results["bare"]), statistics.median(results["harness"])
    out = {
        "command": "python bench/efficiency.py",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": describe(device),
        "model": args.model,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "bare_samples_per_s": [round(r, 1) for r in results["bare"]],
        "harness_samples_per_s": [round(r, 1) for r in results["harness"]],
        "ratio_bare_to_harness": round(bare_rate / harness_rate, 3),
        "target_ratio": 1.05,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
