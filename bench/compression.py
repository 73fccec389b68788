"""What the variants cost and keep, measured against their parents in the same run:

- ``int8`` and ``int8-static`` of ``zoo:fmnist-cnn``: accuracy on the 10,000 test images as a share of
  the fp32 parent's (MLPerf's rule: at least 99%), CPU latency at batch 1 (median of ``--queries``
  calls) and throughput at batch 256 (median of ``--rounds``), the parent and the variant alternated;
- ``prune-channels=0.3``: parameters, weight bytes and FLOPs per sample against the parent's;
- ``temperature`` on every zoo model: the ECE and NLL of the parent and of the variant with their
  intervals (the calibration metric, through the harness, on each model's own test set; T fitted on
  the task's held-out validation split), their paired changes with intervals over the same resamples,
  and a diagnosis: accuracy and NLL-optimal T on the fitted split and on the test split;
- the time each transform takes (building the variant less building its parent, medians of 3).

    python bench/compression.py           # writes bench/results/compression.json
"""

from __future__ import annotations

import argparse
import json
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
from harness.variants.fitted import logits_of

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
    """ECE and NLL of every zoo model and its +temperature variant (fitted on the task's held-out
    validation split), from the harness's calibration records, and their paired differences with
    percentile intervals over the same bootstrap resamples of the test examples (``harness compare``
    pairs per-example figures only, and ECE is a binned statistic)."""
    models = [f"zoo:{name}" for name in catalog()]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            variant, task = f"{model}+temperature", get_task(get_task_name(model))
            run = [sys.executable, "-m", "harness", "run", "--model", model, "--model", variant, "--task", task.name,
                   "--metric", "calibration", "--json", "--store", tmp]  # fmt: skip
            records = json.loads(subprocess.run(run, capture_output=True, text=True, check=True).stdout)
            fitted = load_model(variant, task)
            entry: dict[str, object] = {key: fitted.info["lineage"][-1][key] for key in ("temperature", "fitted_on")}
            parent, test = load_model(model, task), task.load()
            logits = [logits_of(m.module, test) for m in (parent, fitted)]  # one pass each, used twice
            change = paired_change(*logits, test.labels)
            entry["diagnosis"] = diagnosis(parent, task, entry["fitted_on"]["split"], logits[0])  # type: ignore[index]
            for figure in FIGURES:
                pair = [next(r for r in records if r["model"] == m and r["metric"] == figure) for m in (model, variant)]
                short = figure.removeprefix("calibration.")
                entry[short] = {"parent": round(pair[0]["value"], 4), "variant": round(pair[1]["value"], 4),
                                "parent_ci": [round(pair[0]["ci_low"], 4), round(pair[0]["ci_high"], 4)],
                                "variant_ci": [round(pair[1]["ci_low"], 4), round(pair[1]["ci_high"], 4)],
                                **change[short]}  # fmt: skip
            out[model] = entry
            print(model, entry, flush=True)
    return out


FIGURES = ("calibration.ece", "calibration.nll")


def diagnosis(parent, task, fitted_on: str, test_logits: torch.Tensor) -> dict[str, dict[str, float]]:
    """Why a temperature fitted on held-out data helps or not on the test split: the parent's accuracy
    on each split and the NLL-minimising temperature of each (the test split's is for diagnosis only:
    fitting there is what ``+temperature=test`` does, and its figures are optimistic)."""
    from harness.variants.calibrate import fitted_temperature

    out = {}
    for name in (fitted_on, task.eval_split):
        split = task.load(name)
        logits = test_logits if name == task.eval_split else logits_of(parent.module, split)
        out[name] = {"accuracy": round(float((logits.argmax(1) == split.labels).float().mean()), 4),
                     "nll_optimal_temperature": round(fitted_temperature(logits, split.labels), 4)}  # fmt: skip
    return out


def paired_change(parent: torch.Tensor, variant: torch.Tensor, labels: torch.Tensor) -> dict[str, dict[str, object]]:
    """Variant minus parent, for ECE (15 bins, as the calibration metric) and mean NLL, each with a
    95% percentile interval over 1,000 paired resamples of the test examples (the same rows for both),
    from the two models' test logits."""
    from torch.nn import functional as F

    from harness import stats
    from harness.metrics.calibration import ece_statistic

    sides = []
    for logits in (parent.double(), variant.double()):
        probs = torch.softmax(logits, 1).numpy()
        nll = F.cross_entropy(logits, labels, reduction="none").numpy()
        sides.append((ece_statistic(probs.max(1), probs.argmax(1) == labels.numpy(), 15), nll))
    n = len(labels)
    out = {}
    for short, statistic in (("ece", lambda rows: sides[1][0](rows) - sides[0][0](rows)),
                             ("nll", lambda rows: sides[1][1][rows].mean(1) - sides[0][1][rows].mean(1))):  # fmt: skip
        estimate = stats.bootstrap(statistic, n, resamples=1000, seed=0, method="percentile")
        low, high = estimate.ci_low, estimate.ci_high
        verdict = "variant lower" if high < 0 else "variant higher" if low > 0 else "no significant change"
        out[short] = {"change": round(estimate.value, 4), "change_ci": [round(low, 4), round(high, 4)],
                      "verdict": verdict}  # fmt: skip
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
        "temperature lowers ECE on every zoo model": all(
            v["ece"]["change"] < 0  # type: ignore[index]
            for v in out["temperature"].values()  # type: ignore[union-attr]
        ),
    }
    verdicts = [v["ece"]["verdict"] for v in out["temperature"].values()]  # type: ignore[union-attr,index]
    out["temperature_ece_verdicts"] = {v: verdicts.count(v) for v in sorted(set(verdicts))}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["targets"], indent=2))


if __name__ == "__main__":
    main()
