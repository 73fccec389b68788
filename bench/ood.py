"""The ood metric against pytorch-ood's detectors on the same model and data, in one run.

``zoo:fmnist-cnn`` on the 10,000 Fashion-MNIST test images against the three OOD sets of the ``ood``
suite (scikit-learn's digits, uniform and Gaussian noise), the six detectors, Mahalanobis and kNN
fitted on the 5,000 shipped training images (``train-sample``):

- **harness**: ``OutOfDistribution.compute`` through an ``EvalContext`` (one pass per split for the
  logits and features, ODIN's own passes), point figures only (``--resamples 1``) so that both sides
  do the same work; and again with the default 1,000 stratified bootstrap resamples, reported apart;
- **pytorch-ood**: each detector as its documentation uses it (``detector(x)`` per batch, features
  from the network up to its last layer, ``fit_features`` on the training features), and
  ``OODMetrics`` per OOD set (AUROC, AUPR, FPR@95), the ID scores computed once per detector.

The two sides alternate, ``--repeats`` times each; the ratio is of the medians (target <= 1.1).

    python bench/ood.py        # writes bench/results/ood.json
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

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results"
MODEL, TASK, SETS = "zoo:fmnist-cnn", "fashion-mnist", ("sklearn-digits", "noise:uniform", "noise:gaussian")
FIT, BATCH = 5000, 256


def harness_side(resamples: int) -> float:
    from harness.context import EvalContext
    from harness.metrics.ood import OodParams, OutOfDistribution
    from harness.models import load_model
    from harness.tasks import get_task

    task = get_task(TASK)
    model = load_model(MODEL, task)
    ctx = EvalContext(model, task, task.load(), torch.device("cpu"), BATCH, 0, resamples, "bench", {})
    with tempfile.TemporaryDirectory() as cache:  # cold: the training features are not cached yet
        os.environ["HARNESS_CACHE"] = cache
        start = time.perf_counter()
        OutOfDistribution().compute(ctx, OodParams(sets=SETS, fit_examples=FIT))
        return time.perf_counter() - start


def pytorch_ood_side() -> float:
    from pytorch_ood import detector as pood
    from pytorch_ood.metrics import OODMetrics

    from harness.metrics.ood import ood_task
    from harness.models import load_model
    from harness.tasks import get_task

    task = get_task(TASK)
    module = load_model(MODEL, task).module.eval()
    encoder = torch.nn.Sequential(*list(module)[:-1])  # up to the last Linear: the penultimate features
    train = task.load("train-sample")
    picked = np.arange(FIT)
    sets = {name: ood_task(name, task).load().data for name in SETS}
    test = task.load().data
    start = time.perf_counter()
    with torch.no_grad():
        features = torch.cat([encoder(train.data[picked[i : i + BATCH]]) for i in range(0, FIT, BATCH)])
    labels = train.labels[picked]
    detectors = {
        "msp": pood.MaxSoftmax(module), "max-logit": pood.MaxLogit(module), "energy": pood.EnergyBased(module),
        "odin": pood.ODIN(module), "mahalanobis": pood.Mahalanobis(encoder).fit_features(features, labels),
        "knn": pood.KNN(encoder).fit_features(features, labels),
    }  # fmt: skip

    def scores(detector, inputs: torch.Tensor) -> torch.Tensor:
        parts = []
        for i in range(0, len(inputs), BATCH):
            if isinstance(detector, pood.ODIN):
                parts.append(detector(inputs[i : i + BATCH]).detach())
            else:
                with torch.no_grad():
                    parts.append(detector(inputs[i : i + BATCH]))
        return torch.cat(parts)

    for detector in detectors.values():
        inside = scores(detector, test)
        for data in sets.values():
            outside = scores(detector, data)
            metrics = OODMetrics()
            metrics.update(torch.cat([inside, outside]),
                           torch.cat([torch.zeros(len(inside)), -torch.ones(len(outside))]).long())  # fmt: skip
            metrics.compute()
    return time.perf_counter() - start


def main() -> None:
    from harness.hardware.devices import describe, resolve

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "ood.json")
    args = parser.parse_args()
    times: dict[str, list[float]] = {"harness": [], "pytorch_ood": []}
    for r in range(args.repeats):  # alternated: the machine's load falls on both sides
        sides = [("harness", lambda: harness_side(1)), ("pytorch_ood", pytorch_ood_side)]
        for name, fn in sides if r % 2 == 0 else sides[::-1]:
            times[name].append(round(fn(), 2))
            print(name, times[name][-1], flush=True)
    with_intervals = round(harness_side(1000), 2)
    ratio = statistics.median(times["harness"]) / statistics.median(times["pytorch_ood"])
    out = {
        "what": f"{MODEL} on {TASK} (10,000 test images) against {', '.join(SETS)}: six detectors, "
        f"Mahalanobis and kNN fitted on the {FIT} shipped training images, batches of {BATCH}",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "device": describe(resolve("cpu")),
        "seconds": times,
        "ratio_of_medians": round(ratio, 3),
        "harness_with_1000_resample_intervals_s": with_intervals,
        "targets": {"harness <= 1.1x pytorch-ood": ratio <= 1.1},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
