"""Time of the fairness metric for one model on the Adult test set (16,281 rows; four sensitive
features: sex, race, age in four buckets, native country; the intersection sex x race; 1,000 bootstrap
resamples), against fairlearn's own bootstrap (``MetricFrame`` with ``n_boot``) for the same per-group
metrics and groupings, measured in the same run.

fairlearn's bootstrap recomputes the whole MetricFrame per resample, so it is timed at ``--boot``
resamples and scaled to 1,000 (its cost is linear in the resamples). It gives CIs for the per-group
metrics only; the harness's time also covers the disparities, their CIs and the verdicts.

    python bench/fairness.py            # writes bench/results/fairness.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import torch

from harness.context import EvalContext
from harness.hardware.devices import describe
from harness.metrics.fairness import Fairness, FairnessParams, group_columns, group_metrics
from harness.models import load_model
from harness.tasks import get_task

RESULTS = Path(__file__).parent / "results"
PARAMS = FairnessParams(
    features=("sex", "race", "age", "native_country"), buckets={"age": (25, 45, 65)}, intersections=(("sex", "race"),)
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="zoo:adult-mlp")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--boot", type=int, default=20, help="fairlearn bootstrap resamples to time")
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "fairness.json")
    args = parser.parse_args()

    task = get_task("adult")
    split = task.load()
    ctx = EvalContext(load_model(args.model, task), task, split, torch.device("cpu"), 1024, 0, 1000, "bench", {})
    _ = ctx.clean  # the clean pass is shared with the other metrics; not part of the fairness cost
    harness = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        records = Fairness().compute(ctx, PARAMS)
        harness.append(time.perf_counter() - started)

    import fairlearn.metrics as fm

    columns = group_columns(split.attributes, PARAMS, task.sensitive)
    y, yhat = ctx.clean.labels, ctx.clean.preds
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for groups in columns.values():
            fm.MetricFrame(metrics=group_metrics(), y_true=y, y_pred=yhat, sensitive_features=groups.to_numpy(),
                           n_boot=args.boot, ci_quantiles=[0.025, 0.975], random_state=0)  # fmt: skip
    fairlearn_s = (time.perf_counter() - started) * 1000 / args.boot
    median = statistics.median(harness)
    out = {
        "command": "python bench/fairness.py",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe(torch.device("cpu")),
        "model": args.model,
        "rows": len(split),
        "groupings": list(columns),
        "resamples": 1000,
        "records": len(records),
        "harness_seconds": [round(t, 3) for t in harness],
        "harness_median_seconds": round(median, 3),
        "fairlearn_bootstrap_seconds_per_1000": round(fairlearn_s, 1),
        "fairlearn_bootstrap_timed_resamples": args.boot,
        "ratio_harness_to_fairlearn_bootstrap": round(median / fairlearn_s, 4),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
