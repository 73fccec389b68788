"""Time per explained example, for each attribution method and model.

For each model and method: the harness's explainer (``harness.explain.methods``: frozen weights,
calls of about 256 forward passes each, captum's internal batching) against captum's own class called directly on the
same examples with the same settings, alternately, median of ``--rounds``; the figure is seconds per
example and the ratio of the two (the harness's overhead on captum). Then the whole
``interpretability`` metric (attributions, every score, the randomisation test, figures) per
explained example, which is what a suite run costs.

    python bench/interpretability.py      # writes bench/results/interpretability.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from harness import runner
from harness.context import EvalContext
from harness.explain.baselines import image_baseline, tabular_baseline
from harness.explain.methods import Settings
from harness.hardware.devices import describe, resolve
from harness.metrics.interpretability import Interpretability, InterpretabilityParams, method_names
from harness.models import load_model
from harness.registry import explainers
from harness.tasks import get_task

RESULTS = Path(__file__).parent / "results"


def captum_direct(name: str, module: torch.nn.Module, x: torch.Tensor, target: torch.Tensor,
                  baselines: torch.Tensor, s: Settings) -> torch.Tensor:  # fmt: skip
    """The method as a user would call captum, on all examples at once, with the same settings."""
    from captum import attr

    per_eval = max(1, s.batch_size // len(x))
    if name == "saliency":
        return attr.Saliency(module).attribute(x, target=target, abs=True)
    if name == "integrated-gradients":
        ig = attr.IntegratedGradients(module)
        return ig.attribute(x, baselines=baselines, target=target, n_steps=s.ig_steps, internal_batch_size=s.batch_size)
    if name == "gradient-shap":  # no internal batching in captum: 16 examples x 16 samples at a time
        shap = attr.GradientShap(module)
        parts = [
            shap.attribute(x[i : i + 16], baselines=baselines[i : i + 16], target=target[i : i + 16],
                           n_samples=s.shap_samples, stdevs=s.shap_stdev)
            for i in range(0, len(x), 16)
        ]  # fmt: skip
        return torch.cat(parts)
    if name == "input-x-gradient":
        return attr.InputXGradient(module).attribute(x, target=target)
    if name == "deeplift":
        return attr.DeepLift(module).attribute(x, baselines=baselines, target=target)
    if name == "occlusion":
        c, w, st = x.shape[1], s.occlusion_window, s.occlusion_stride
        occlusion = attr.Occlusion(module)
        return occlusion.attribute(
            x,
            sliding_window_shapes=(c, w, w),
            strides=(c, st, st),
            baselines=baselines,
            target=target,
            perturbations_per_eval=per_eval,
        )
    if name == "feature-ablation":
        return attr.FeatureAblation(module).attribute(x, baselines=baselines, target=target,
                                                      perturbations_per_eval=per_eval)  # fmt: skip
    shapley = attr.ShapleyValueSampling(module)
    return shapley.attribute(x, baselines=baselines, target=target, n_samples=s.shapley_samples,
                             perturbations_per_eval=per_eval)  # fmt: skip


def time_method(name: str, module: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, baselines: torch.Tensor,
                settings: Settings, rounds: int) -> dict[str, float]:  # fmt: skip
    """Median seconds of the harness's explainer and of captum called directly, alternately."""
    method = explainers.get(name)
    explain, n = method.build(module, settings), method.chunk(settings)

    def harness() -> torch.Tensor:
        return torch.cat([explain(x[i : i + n], target=target[i : i + n], baselines=baselines[i : i + n])
                          for i in range(0, len(x), n)])  # fmt: skip

    def direct() -> torch.Tensor:
        return captum_direct(name, module, x, target, baselines, settings)

    times: dict[str, list[float]] = {"harness": [], "captum": []}
    for _ in range(rounds):
        for label, fn in (("captum", direct), ("harness", harness)):
            torch.manual_seed(0)
            started = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - started)
    return {label: statistics.median(values) for label, values in times.items()}


def main() -> None:
    from harness.explain.methods import QUIET

    for message in QUIET:  # captum's notices, when it is called directly
        warnings.filterwarnings("ignore", message=message)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["zoo:fmnist-cnn", "zoo:fmnist-resnet10t", "zoo:adult-mlp"])
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "interpretability.json")
    args = parser.parse_args()

    device = resolve(args.device)
    settings = Settings()
    rows = []
    for model_name in args.models:
        task = get_task("adult" if model_name.startswith("zoo:adult") else "fashion-mnist")
        model = load_model(model_name, task).to(device)
        module = model.module.eval()
        split = task.load()
        keep = np.flatnonzero(~torch.isnan(split.inputs.reshape(len(split), -1)).any(1).numpy())[: args.examples]
        x = split.inputs[keep].float().to(device)
        with torch.no_grad():
            target = module(x).argmax(1)
        if task.modality == "image":
            baselines = image_baseline("black", x)
        else:
            baselines = tabular_baseline(task).to(device).expand_as(x).clone()
        for name in method_names(task, InterpretabilityParams()):
            seconds = time_method(name, module, x, target, baselines, settings, args.rounds)
            h, c = seconds["harness"], seconds["captum"]
            rows.append({"model": model_name, "method": name, "examples": len(x),
                         "harness_ms_per_example": round(1000 * h / len(x), 3),
                         "captum_ms_per_example": round(1000 * c / len(x), 3), "ratio": round(h / c, 3)})  # fmt: skip
            print(rows[-1], flush=True)
        ctx = EvalContext(model, task, split.subset(keep), device, 256, 0, 1000, "bench", {"limit": len(keep)})
        started = time.perf_counter()
        records = Interpretability().compute(ctx, InterpretabilityParams())
        seconds = time.perf_counter() - started
        rows.append({"model": model_name, "method": "whole metric (every method and score)", "examples": len(x),
                     "harness_ms_per_example": round(1000 * seconds / len(x), 1), "records": len(records)})  # fmt: skip
        print(rows[-1], flush=True)

    result = {
        "command": "python bench/interpretability.py",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe(device),
        "versions": runner.library_versions(),
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
        "rows": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
