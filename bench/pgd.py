"""The harness's PGD (foolbox, through ``harness.attacks.adversarial.run_attack``) against a plain-torch
PGD loop on the same model, data, epsilons and steps: ratio of median wall times (target <= 1.10).

    python bench/pgd.py            # writes bench/results/pgd.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from harness import runner
from harness.attacks.adversarial import run_attack
from harness.hardware.devices import describe
from harness.metrics.adversarial import AdversarialParams
from harness.models import load_model
from harness.registry import attacks
from harness.tasks import get_task

RESULTS = Path(__file__).parent / "results"


def plain_pgd(module, x, y, eps: float, steps: int, batch_size: int) -> np.ndarray:
    """Madry et al.: uniform random start, steps of 2.5 eps / steps on the sign of the gradient, projection."""
    robust = []
    for start in range(0, len(y), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        delta = (torch.rand_like(xb) * 2 - 1) * eps
        delta = (xb + delta).clamp(0, 1) - xb
        for _ in range(steps):
            delta.requires_grad_(True)
            loss = F.cross_entropy(module(xb + delta), yb)
            (grad,) = torch.autograd.grad(loss, delta)
            delta = (delta.detach() + 2.5 * eps / steps * grad.sign()).clamp(-eps, eps)
            delta = (xb + delta).clamp(0, 1) - xb
        with torch.no_grad():
            robust.append((module(xb + delta).argmax(1) == yb).numpy())
    return np.concatenate(robust)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="zoo:fmnist-cnn")
    parser.add_argument("--examples", type=int, default=500)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "pgd.json")
    args = parser.parse_args()
    task = get_task("fashion-mnist")
    split = task.load()
    module = load_model(args.model, task).module.eval()
    x, y = split.inputs[: args.examples], split.labels[: args.examples]
    with torch.no_grad():
        correct = (module(x).argmax(1) == y).numpy()
    budget = AdversarialParams(pgd_steps=args.steps, restarts=1).model_dump()
    attack = attacks.get("pgd-linf")

    def harness_pgd() -> np.ndarray:
        outcome = run_attack(attack, module, x, y, correct, bounds=(0.0, 1.0), epsilons=[args.eps], budget=budget,
                             seed=0, batch_size=250)  # fmt: skip
        return outcome.robust[args.eps]

    def plain() -> np.ndarray:
        torch.manual_seed(0)
        return plain_pgd(module, x, y, args.eps, args.steps, 250) & correct

    times: dict[str, list[float]] = {"harness": [], "plain": []}
    results = {"harness": harness_pgd(), "plain": plain()}  # warm-up
    for _ in range(args.repeats):
        for name, fn in (("plain", plain), ("harness", harness_pgd)):
            started = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - started)
    harness_s, plain_s = statistics.median(times["harness"]), statistics.median(times["plain"])
    figures = {
        "command": "python bench/pgd.py",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe(torch.device("cpu")),
        "versions": runner.library_versions(),
        "model": args.model,
        "examples": args.examples,
        "steps": args.steps,
        "eps_linf": args.eps,
        "robust_accuracy": {"harness": float(results["harness"].mean()), "plain_torch": float(results["plain"].mean())},
        "harness_seconds": [round(t, 3) for t in times["harness"]],
        "plain_torch_seconds": [round(t, 3) for t in times["plain"]],
        "ratio": round(harness_s / plain_s, 3),
        "target_ratio": 1.10,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
