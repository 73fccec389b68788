"""The harness's AutoAttack (``autoattack-linf`` through ``run_attack``: the cascade of APGD-CE, APGD-T,
FAB-T and Square) against torchattacks 3.5.1's, on the same model, examples and device.

torchattacks' ``AutoAttack(version="standard")`` runs APGD, APGD-T and FAB with 10 iterations (its
defaults), not the published 100, so the reference is torchattacks' ``MultiAttack`` of its APGD, APGDT,
FAB (multi-targeted) and Square with the published budgets (100 iterations, 9 target classes, 5,000
queries): the same protocol, the other implementation. Its ``AutoAttack`` with its own defaults is run
too and reported beside (``--no-defaults`` skips it). The examples are split into chunks and the two
sides alternate per chunk; the ratio is total harness time over total torchattacks time, and the
per-chunk ratios' median is reported.

    python bench/autoattack.py                     # zoo:fmnist-cnn-adv, Linf 0.1, 1,000 examples
    python bench/autoattack.py --examples 200      # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from harness.attacks.adversarial import run_attack
from harness.hardware.devices import describe
from harness.metrics.adversarial import AdversarialParams
from harness.models import load_model
from harness.models.base import frozen
from harness.registry import attacks
from harness.tasks import get_task

RESULTS = Path(__file__).parent / "results"


def theirs(module, x, y, eps: float, published: bool) -> np.ndarray:
    """Robust per example under torchattacks (published budgets, or its AutoAttack's defaults)."""
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import torchattacks as ta

    if published:
        attack = ta.MultiAttack([
            ta.APGD(module, norm="Linf", eps=eps, steps=100, loss="ce", n_restarts=1, seed=0),
            ta.APGDT(module, norm="Linf", eps=eps, steps=100, n_restarts=1, n_classes=10, seed=0),
            ta.FAB(module, norm="Linf", eps=eps, steps=100, multi_targeted=True, n_classes=10, n_restarts=1, seed=0),
            ta.Square(module, norm="Linf", eps=eps, n_queries=5000, n_restarts=1, seed=0),
        ])  # fmt: skip
    else:
        attack = ta.AutoAttack(module, norm="Linf", eps=eps, version="standard", n_classes=10, seed=0)
    adv = attack(x, y)
    with torch.no_grad():
        robust = module(adv).argmax(1) == y
    inside = (adv - x).flatten(1).abs().amax(1) <= eps * (1 + 1e-4)
    return (robust | ~inside).numpy()


def ours(module, x, y, correct, eps: float) -> np.ndarray:
    budget = {**AdversarialParams().model_dump(), "protocol": "standard"}
    outcome = run_attack(attacks.get("autoattack-linf"), module, x, y, correct, bounds=(0.0, 1.0), epsilons=[eps],
                         budget=budget, seed=0, batch_size=250)  # fmt: skip
    return outcome.robust[eps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="zoo:fmnist-cnn-adv")
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--no-defaults", action="store_true", help="skip torchattacks' AutoAttack at its defaults")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=RESULTS / "autoattack.json")
    args = parser.parse_args()
    device = torch.device(args.device)
    task = get_task("fashion-mnist")
    split = task.load()
    module = load_model(args.model, task).module.eval().to(device)
    x, y = split.inputs[: args.examples].to(device), split.labels[: args.examples].to(device)
    with torch.no_grad():
        correct = (module(x).argmax(1) == y).cpu().numpy()
    times = {"harness": [], "torchattacks": []}
    robust = {"harness": [], "torchattacks": []} | ({} if args.no_defaults else {"torchattacks-defaults": []})
    chunks = np.array_split(np.arange(args.examples), args.chunks)
    with frozen(module):
        for number, rows in enumerate(chunks):
            sides = ["harness", "torchattacks"] if number % 2 == 0 else ["torchattacks", "harness"]
            for side in sides:
                start = time.perf_counter()
                if side == "harness":
                    result = ours(module, x[rows], y[rows], correct[rows], args.eps)
                else:
                    keep = np.flatnonzero(correct[rows])
                    result = correct[rows].copy()
                    result[keep] = theirs(module, x[rows][keep], y[rows][keep], args.eps, published=True)
                times[side].append(time.perf_counter() - start)
                robust[side].append(result)
                print(f"chunk {number + 1}/{len(chunks)} {side}: {times[side][-1]:.0f} s, robust "
                      f"{result.mean():.3f}", flush=True)  # fmt: skip
            if args.no_defaults:
                continue
            keep = np.flatnonzero(correct[rows])
            defaults = correct[rows].copy()
            defaults[keep] = theirs(module, x[rows][keep], y[rows][keep], args.eps, published=False)
            robust["torchattacks-defaults"].append(defaults)
    accuracy = {side: float(np.concatenate(values).mean()) for side, values in robust.items()}
    ratio = sum(times["harness"]) / sum(times["torchattacks"])
    chunk_ratios = [a / b for a, b in zip(times["harness"], times["torchattacks"], strict=True)]
    result = {
        "what": f"AutoAttack standard, Linf {args.eps:g}, {args.model}, first {args.examples} test images",
        "device": describe(device),
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "clean_accuracy": float(correct.mean()),
        "robust_accuracy": accuracy,
        "seconds": {side: round(sum(v), 1) for side, v in times.items()},
        "wall_time_ratio": round(ratio, 3),
        "median_chunk_ratio": round(statistics.median(chunk_ratios), 3),
        "target": "ratio <= 1.1 and the harness's robust accuracy equal or lower",
        "met": bool(ratio <= 1.1 and accuracy["harness"] <= accuracy["torchattacks"]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
