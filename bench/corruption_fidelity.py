"""Corruption fidelity: the accuracy of a zoo model under each of the 19 corruptions and severities, with
the harness's torch corruptions and with ``imagecorruptions`` 1.1.2 (the packaged ImageNet-C code), on
the same images: a seeded set of Fashion-MNIST test images padded to 32 x 32 (the reference's smallest
size), corrupted by each, cropped back to 28 x 28 and classified by ``zoo:fmnist-cnn``.

Per corruption and severity: both accuracies, their paired difference (ours - reference) with its
standard error (per-example outcomes, same images) and McNemar's exact p-value. A corruption whose
difference exceeds 3 points plus 2 standard errors is listed under ``outside``.

    python bench/corruption_fidelity.py            # writes bench/results/corruption_fidelity.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.attacks.corruptions import CORRUPTIONS, corrupt  # noqa: E402
from harness.leaderboard.compare import mcnemar_exact  # noqa: E402
from harness.models import load_model  # noqa: E402
from harness.tasks import get_task  # noqa: E402
from tests.imagecorruptions_shim import imagecorruptions  # noqa: E402
from tests.test_corruption_reference import run_reference  # noqa: E402

RESULTS = Path(__file__).parent / "results"
BOUND = 0.03  # points of accuracy, plus two standard errors of the paired difference


def accuracies(images: int, seed: int, names: list[str]) -> dict:
    task = get_task("fashion-mnist")
    split = task.load()
    picked = np.sort(np.random.default_rng(seed).permutation(len(split))[:images])
    clean = F.pad(split.inputs[picked], (2, 2, 2, 2))
    labels = split.labels[picked].numpy()
    model = load_model("zoo:fmnist-cnn", task)

    def correct(batch: torch.Tensor) -> np.ndarray:
        return model.logits(batch[:, :, 2:30, 2:30].float()).argmax(1).numpy() == labels

    out = {"clean": float(correct(clean).mean()), "rows": []}
    with imagecorruptions() as reference:
        for name in names:
            for severity in range(1, 6):
                started = time.perf_counter()
                ours = correct(torch.floor(corrupt(clean, name, severity, seed) * 255 + 1e-4) / 255)
                theirs = correct(run_reference(reference, clean, name, severity))
                d = ours.astype(float) - theirs.astype(float)
                se = float(d.std(ddof=1) / np.sqrt(len(d)))
                row = {"corruption": name, "severity": severity, "ours": float(ours.mean()),
                       "reference": float(theirs.mean()), "difference": float(d.mean()), "se": se,
                       "mcnemar_p": mcnemar_exact(ours, theirs), "seconds": time.perf_counter() - started}  # fmt: skip
                out["rows"].append(row)
                print(f"{name}@{severity}: ours {row['ours']:.3f} reference {row['reference']:.3f} "
                      f"diff {row['difference']:+.3f} ±{2 * se:.3f}", flush=True)  # fmt: skip
    out["outside"] = [f"{r['corruption']}@{r['severity']}" for r in out["rows"]
                      if abs(r["difference"]) > BOUND + 2 * r["se"]]  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corruption", action="append", help="only these (default: all 19)")
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "corruption_fidelity.json")
    args = parser.parse_args()
    names = args.corruption or list(CORRUPTIONS)
    out = {"what": "accuracy of zoo:fmnist-cnn under each corruption: harness vs imagecorruptions 1.1.2",
           "images": args.images, "seed": args.seed, "bound": f"{BOUND:.0%} + 2 standard errors",
           "time": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
    out |= accuracies(args.images, args.seed, names)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2) + "\n")
    print(f"outside the bound: {', '.join(out['outside']) or 'none'}")


if __name__ == "__main__":
    main()
