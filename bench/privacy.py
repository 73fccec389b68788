"""What the membership attacks with reference models cost, on 2 cores.

- **Training one reference model** of each zoo recipe of the ``privacy`` suite, on the half of the
  population its first reference model trains on (``harness.privacy.references``), with the
  population the metric builds (members and non-members as the suite draws them);
- **the attack** itself: scoring 5,000 + 5,000 records with LiRA offline given the reference logits,
  and the stratified bootstrap of its figures;
- **the suite**, ``harness run --suite privacy``: cold (empty store and cache: every reference model
  trained), warm cache (a new store, the reference models cached: what a second model or run pays),
  and warm store (every job from the store).

    python bench/privacy.py                 # writes bench/results/privacy.json
    python bench/privacy.py --keep STORE    # and keeps the cold run's store (for the leaderboard)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results"
RECIPES = {"fashion-mnist": ("fmnist-linear", "fmnist-mlp", "fmnist-cnn", "fmnist-cnn-adv", "fmnist-cnn-aug",
                             "fmnist-resnet10t"),
           "adult": ("adult-logreg", "adult-mlp", "adult-mlp-fair"), "german-credit": ("german-logreg",)}  # fmt: skip
EXAMPLES = {"fashion-mnist": 5000, "adult": 5000, "german-credit": 300}


def task_population(task_name: str):
    """The population the membership metric trains the task's reference models on (seed 0)."""
    from harness.metrics.membership import seeded_rows
    from harness.privacy.references import records_outside
    from harness.tasks import get_task

    task = get_task(task_name)
    training, full = task.load(task.training_split), task.load()
    n = min(EXAMPLES[task_name], len(training), len(full))
    return records_outside(training, seeded_rows(len(training), n, 0), full, seeded_rows(len(full), n, 1))


def train_times() -> dict[str, dict[str, float]]:
    from harness.models.zoo.train import fit

    out = {}
    for task_name, recipes in RECIPES.items():
        pop = task_population(task_name)
        half = pop.subset(np.sort(np.random.default_rng(0).permutation(len(pop))[: len(pop) // 2]))
        for recipe in recipes:
            start = time.perf_counter()
            fit(recipe, half, seed=0)
            out[recipe] = {"seconds": round(time.perf_counter() - start, 2), "examples": len(half)}
            print(recipe, out[recipe], flush=True)
    return out


def attack_time() -> dict[str, float]:
    from harness.metrics.membership import membership_figures
    from harness.privacy import get_attack

    rng = np.random.default_rng(0)
    logits, labels = rng.normal(0, 2, (10000, 10)), rng.integers(0, 10, 10000)
    reference = rng.normal(0, 2, (4, 10000, 10))
    start = time.perf_counter()
    scores = get_attack("lira-offline").score(logits, labels, reference)
    scored = time.perf_counter() - start
    start = time.perf_counter()
    membership_figures(scores[:5000], scores[5000:])
    figures = time.perf_counter() - start
    return {"score_10000_records_s": round(scored, 3), "figures_with_1000_resamples_s": round(figures, 2)}


def suite(store: Path, cache: Path) -> float:
    env = {**os.environ, "HARNESS_CACHE": str(cache)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness", "run", "--suite", "privacy", "--store", str(store), "--quiet"],
                   check=True, env=env)  # fmt: skip
    return round(time.perf_counter() - start, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="keep the cold run's store here")
    parser.add_argument("--no-suite", action="store_true", help="only the training and attack times")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    result = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
              "torch": torch.__version__, "reference_model_training": train_times(),
              "attack": attack_time()}  # fmt: skip
    if not args.no_suite:
        with tempfile.TemporaryDirectory() as tmp:
            cache, cold = Path(tmp) / "cache", args.keep or Path(tmp) / "cold"
            result["suite_cold_s"] = suite(cold, cache)
            result["suite_warm_cache_new_store_s"] = suite(Path(tmp) / "warm", cache)
            result["suite_warm_store_s"] = suite(cold, cache)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "privacy.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
