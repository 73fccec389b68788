"""What the variants cost and keep, measured against their parents in the same run:

- ``int8`` and ``int8-static`` of ``zoo:fmnist-cnn``: accuracy on the 10,000 test images as a share of
  the fp32 parent's (MLPerf's rule: at least 99%), CPU latency at batch 1 (median of ``--queries``
  calls) and throughput at batch 256 (median of ``--rounds``), the parent and the variant alternated;
- ``prune-channels=0.3``: parameters, weight bytes and FLOPs per sample against the parent's;
- ``temperature`` on every zoo model: the ECE of the parent and of the variant with their intervals
  (the calibration metric, through the harness, on each model's own test set);
- the time each transform takes (building the variant less building its parent, medians of 3).

    python bench/compression.py           # writes bench/results/compression.json
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
import warnings
from datetime import UTC, datetime
from pathlib import Path

import torch

from harness.hardware import size
from harness.hardware.devices import describe, resolve
from harness.models import load_model
from harness.models.zoo import catalog
from harness.tasks import get_task

RESULTS = Path(__file__).parent / "results"
PARENT = "zoo:fmnist-cnn"
VARIANTS = ("int8", "int8-static", "prune=0.5", "prune-channels=0.3", "temperature")


def accuracy(module: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.inference_mode():
        preds = torch.cat([module(inputs[i : i + 1000]).argmax(1) for i in range(0, len(inputs), 1000)])
    return float((preds == labels).float().mean())


def latency_ms(module: torch.nn.Module, x: torch.Tensor, queries: int) -> float:
    with torch.inference_mode():
        for _ in range(10):
            module(x)
        times = []
        for _ in range(queries):
            start = time.perf_counter()
            module(x)
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def throughput(module: torch.nn.Module, x: torch.Tensor, steps: int = 10) -> float:
    with torch.inference_mode():
        module(x)
        start = time.perf_counter()
        for _ in range(steps):
            module(x)
    return steps * len(x) / (time.perf_counter() - start)


def quantized(queries: int, rounds: int) -> dict[str, object]:
    task = get_task("fashion-mnist")
    test = task.load()
    parent = load_model(PARENT, task).module.eval()
    out: dict[str, object] = {"parent_accuracy": round(accuracy(parent, test.inputs, test.labels), 4)}
    for variant in ("int8", "int8-static"):
        module = load_model(f"{PARENT}+{variant}", task).module.eval()
        kept = accuracy(module, test.inputs, test.labels)
        lat: dict[str, list[float]] = {"parent": [], "variant": []}
        thr: dict[str, list[float]] = {"parent": [], "variant": []}
        for r in range(rounds):  # alternated: the machine's load falls on both sides
            sides = [("parent", parent), ("variant", module)]
            for side, m in sides if r % 2 == 0 else sides[::-1]:
                lat[side].append(latency_ms(m, test.inputs[:1], queries))
                thr[side].append(throughput(m, test.inputs[:256]))
        out[variant] = {
            "accuracy": round(kept, 4),
            "accuracy_share_of_parent": round(kept / out["parent_accuracy"], 4),  # type: ignore[operator]
            "latency_ms_batch1": {k: round(statistics.median(v), 3) for k, v in lat.items()},
            "latency_ratio": round(statistics.median(lat["variant"]) / statistics.median(lat["parent"]), 3),
            "throughput_batch256": {k: round(statistics.median(v)) for k, v in thr.items()},
            "throughput_ratio": round(statistics.median(thr["variant"]) / statistics.median(thr["parent"]), 3),
            "weight_bytes": {"parent": size.weight_bytes(parent), "variant": size.weight_bytes(module)},
        }
        print(variant, out[variant], flush=True)
    return out


def channels() -> dict[str, object]:
    task = get_task("fashion-mnist")
    sample = task.load().inputs[0]
    built = {
        k: load_model(n, task).module.eval()
        for k, n in (("parent", PARENT), ("variant", f"{PARENT}+prune-channels=0.3"))
    }
    figures = {k: {"parameters": size.parameters(m), "weight_bytes": size.weight_bytes(m),
                   "flops_per_sample": size.flops_per_sample(m, sample)} for k, m in built.items()}  # fmt: skip
    figures["ratios"] = {k: round(figures["variant"][k] / figures["parent"][k], 3) for k in figures["parent"]}
    return figures


def transform_seconds(repeats: int = 3) -> dict[str, float]:
    task = get_task("fashion-mnist")
    out = {}
    for variant in VARIANTS:
        parent_s, variant_s = [], []
        for _ in range(repeats):
            for name, times in ((PARENT, parent_s), (f"{PARENT}+{variant}", variant_s)):
                start = time.perf_counter()
                load_model(name, task)
                times.append(time.perf_counter() - start)
        out[variant] = round(max(0.0, statistics.median(variant_s) - statistics.median(parent_s)), 3)
    return out


def temperature() -> dict[str, object]:
    """ECE of every zoo model and its +temperature variant, from the harness's calibration records."""
    models = [f"zoo:{name}" for name in catalog()]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            command = [sys.executable, "-m", "harness", "run", "--model", model, "--model", f"{model}+temperature",
                       "--task", get_task_name(model), "--metric", "calibration", "--json", "--store", tmp]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ})
            ece = {r["model"]: r for r in json.loads(done.stdout) if r["metric"] == "calibration.ece"}
            pair = [ece[model], ece[f"{model}+temperature"]]
            out[model] = {"ece": [round(r["value"], 4) for r in pair],
                          "ci": [[round(r["ci_low"], 4), round(r["ci_high"], 4)] for r in pair],
                          "lowered": pair[1]["value"] < pair[0]["value"]}  # fmt: skip
            print(model, out[model], flush=True)
    return out


def get_task_name(model: str) -> str:
    return catalog()[model.split(":", 1)[1]]["task"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "compression.json")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # torch.ao's deprecation notices
    out = {
        "what": f"variants of {PARENT} against it on this CPU; temperature on every zoo model",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": describe(resolve("cpu")),
        "threads": torch.get_num_threads(),
        "quantized": quantized(args.queries, args.rounds),
        "prune_channels": channels(),
        "transform_seconds": transform_seconds(),
        "temperature": temperature(),
    }
    q = out["quantized"]
    out["targets"] = {
        "int8-static keeps >= 99% of fp32 accuracy": q["int8-static"]["accuracy_share_of_parent"] >= 0.99,  # type: ignore[index]
        "prune-channels=0.3 reduces parameters and FLOPs": all(
            out["prune_channels"]["ratios"][k] < 1
            for k in ("parameters", "flops_per_sample")  # type: ignore[index]
        ),
        "temperature lowers ECE on every zoo model": all(v["lowered"] for v in out["temperature"].values()),  # type: ignore[union-attr]
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["targets"], indent=2))


if __name__ == "__main__":
    main()
