"""Corruption throughput: the harness's torch corruptions against ``imagecorruptions`` 1.1.2 (the packaged
ImageNet-C code, image by image with numpy, OpenCV and skimage) on the same images, corruptions and
severities, on the CPU. Images per second for each, and their ratio (target: at least 10x for the set of
corruptions the reference runs as published, 16 of 19; the other three run through the test shims).

Two image sets: Fashion-MNIST test images padded to 32 x 32 (grey; the reference's smallest size) and
smooth colour images at 3 x 128 x 128.

    python bench/corruptions.py            # writes bench/results/corruptions.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.attacks.corruptions import CORRUPTIONS, corrupt
from harness.hardware.devices import describe
from harness.tasks import get_task
from tests.imagecorruptions_shim import SHIMMED, imagecorruptions

RESULTS = Path(__file__).parent / "results"


def image_sets(grey: int, colour: int) -> dict[str, torch.Tensor]:
    fmnist = F.pad(get_task("fashion-mnist").load().inputs[:grey], (2, 2, 2, 2))
    torch.manual_seed(0)
    smooth = F.interpolate(torch.rand(colour, 3, 16, 16), size=(128, 128), mode="bicubic").clamp(0, 1)
    return {"fashion-mnist 1x32x32": fmnist, "colour 3x128x128": (smooth * 255).round() / 255}


def reference_seconds(module, images: torch.Tensor, name: str) -> float:
    pixels = [(image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for image in images]
    pixels = [p[:, :, 0] if p.shape[2] == 1 else p for p in pixels]
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for severity in range(1, 6):
            for p in pixels:
                module.corrupt(p, severity, name)
    return time.perf_counter() - started


def harness_seconds(images: torch.Tensor, name: str) -> float:
    corrupt(images[:2], name, 1)  # warm-up: lazy imports, frost's textures
    started = time.perf_counter()
    for severity in range(1, 6):
        corrupt(images, name, severity)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grey", type=int, default=1000, help="Fashion-MNIST images (the metric's default subset)")
    parser.add_argument("--colour", type=int, default=20, help="colour images")
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "corruptions.json")
    args = parser.parse_args()

    sets = image_sets(args.grey, args.colour)
    out: dict = {
        "what": "images per second over severities 1-5, harness (torch, batched) vs imagecorruptions 1.1.2",
        "device": describe(torch.device("cpu")),
        "torch_threads": torch.get_num_threads(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "sets": {},
    }
    with imagecorruptions() as module:
        for label, images in sets.items():
            rows, totals = {}, {"working": [0.0, 0.0], "all": [0.0, 0.0]}
            count = 5 * len(images)
            for name in sorted(CORRUPTIONS):
                ours, theirs = harness_seconds(images, name), reference_seconds(module, images, name)
                rows[name] = {
                    "harness_images_per_s": round(count / ours, 1),
                    "reference_images_per_s": round(count / theirs, 1),
                    "speedup": round(theirs / ours, 2),
                    "reference_needs_shim": name in SHIMMED,
                }
                for key in ("working", "all") if name not in SHIMMED else ("all",):
                    totals[key][0] += ours
                    totals[key][1] += theirs
                print(f"{label:22s} {name:18s} harness {count / ours:9.1f}/s  reference {count / theirs:8.1f}/s  "
                      f"x{theirs / ours:6.1f}", flush=True)  # fmt: skip
            summary = {
                key: {"harness_s": round(o, 3), "reference_s": round(t, 3), "speedup": round(t / o, 2)}
                for key, (o, t) in totals.items()
            }
            out["sets"][label] = {"images": len(images), "per_corruption": rows, "total": summary}
            working, every = summary["working"]["speedup"], summary["all"]["speedup"]
            print(f"{label}: the 16 working corruptions x{working}, all 19 x{every}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
