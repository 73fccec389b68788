"""The harness at the scale of a user's folder: a generated ImageFolder of N JPEGs (256 px, resized to
256 and centre-cropped to 224), a small timm model, and for each N:

- wall time and peak resident memory (the largest process of the run: the harness or one of its
  decoding workers) of a cold and a warm ``--dry-run``, of the accuracy job, and of one corruption at
  one severity on every image, each through the command in a fresh process;
- the clean pass inside one process (``EvalContext.clean``: DataLoader workers, uint8 until the model)
  against a bare ``torchvision.datasets.ImageFolder`` + ``DataLoader`` loop with the same workers and
  transform, alternated, ``--repeats`` times each; the ratio of the medians.

The folders are generated under ``--root`` (never committed) and kept for the next run.

    python bench/scale.py                          # N = 1,000 and 10,000
    python bench/scale.py --sizes 1000 10000 50000
    python bench/scale.py --sizes 1000 10000 --plan-sizes 50000   # 50,000: the cold and warm plan only
    python bench/scale.py --sizes --plan-sizes 50000 --merge       # measure again one size, keep the rest

On 2 CPU cores one pass over 50,000 images takes about half an hour, so ``--plan-sizes`` measures the
plan alone at sizes where the jobs would not fit a session; the JSON says which figures each size has.
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
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
MODEL = "timm:mobilenetv3_small_050"
CLASSES = 10
OPTIONS = ["--task-option", "resize=256", "--task-option", "size=224"]


def generate(folder: Path, n: int) -> Path:
    """``n`` smooth colour JPEGs of 256 x 256 pixels in 10 class folders (kept once made)."""
    from PIL import Image

    done = folder / ".complete"
    if done.exists():
        return folder
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 256, dtype=np.float32)
    for i in range(n):
        target = folder / f"c{i % CLASSES}"
        target.mkdir(parents=True, exist_ok=True)
        tint = rng.uniform(0.2, 1.0, 3)
        pixels = (ramp[:, None, None] * tint + ramp[None, :, None] * (1 - tint)) / 2 + rng.normal(0, 10, (256, 1, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(target / f"{i:06d}.jpg", quality=90)
    done.touch()
    return folder


# ``ru_maxrss`` of a process forked from this one starts at this process's peak (Linux records the old
# memory's high-water mark at exec), and this one grows with the in-process clean passes: each command
# is started by a fresh small interpreter, which reports its own child's peak.
LAUNCHER = (
    "import os, subprocess, sys\n"
    "child = subprocess.Popen(sys.argv[1:])\n"
    "_, status, usage = os.wait4(child.pid, 0)\n"
    "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss, file=sys.stderr)\n"
)


def measured(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall seconds and peak resident MB of one command (its largest process)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *command], env=env, capture_output=True, text=True)
    code, peak_kb = (int(v) for v in done.stderr.strip().splitlines()[-1].split())
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return {"seconds": round(time.perf_counter() - start, 2), "peak_mb": round(peak_kb / 1024, 1)}


def checkpoint(root: Path) -> Path:
    """Fixed random weights for the model (a timm model without weights is drawn anew in each process,
    and so would be a new model to the store at each run)."""
    import timm
    import torch
    from safetensors.torch import save_file

    path = root / f"{MODEL.split(':')[1]}.safetensors"
    if not path.exists():
        torch.manual_seed(0)
        save_file(timm.create_model(MODEL.split(":")[1], num_classes=CLASSES).state_dict(), path)
    return path


def commands(folder: Path, work: Path, workers: int, batch_size: int, weights: Path,
             device: str) -> dict[str, list[str]]:  # fmt: skip
    suite = work / "corruption.yaml"
    suite.write_text(
        "name: scale\ngroups:\n  - tasks: [fashion-mnist]\n    models: [zoo:fmnist-cnn]\n    metrics:\n"
        "      - corruption: {corruptions: [gaussian_noise], severities: [3], examples: 1000000}\n"
    )
    run = [sys.executable, "-m", "harness", "run", "--model", MODEL, "--task", f"imagefolder:{folder}", *OPTIONS,
           "--checkpoint", str(weights), "--workers", str(workers), "--batch-size", str(batch_size),
           "--device", device, "--quiet"]  # fmt: skip
    return {
        "dry_run_cold": [*run, "--metric", "accuracy", "--dry-run", "--store", str(work / "plan")],
        "dry_run_warm": [*run, "--metric", "accuracy", "--dry-run", "--store", str(work / "plan")],
        "accuracy_job": [*run, "--metric", "accuracy", "--store", str(work / "accuracy")],
        "corruption_job": [*run, "--config", str(suite), "--store", str(work / "corruption")],
    }


def clean_pass(folder: Path, workers: int, batch_size: int, weights: Path, device: str) -> float:
    import torch

    from harness.context import EvalContext
    from harness.models import load_model
    from harness.tasks.images import ImageFolderTask

    task = ImageFolderTask(str(folder), resize=256, size=224)
    model = load_model(MODEL, task, checkpoint=str(weights))
    ctx = EvalContext(model, task, task.load(), torch.device(device), batch_size, 0, 10, "bench", {}, workers=workers)
    start = time.perf_counter()
    assert len(ctx.clean.labels) == len(task.load())
    return time.perf_counter() - start


def bare_loop(folder: Path, workers: int, batch_size: int, weights: Path, device: str) -> float:
    """torchvision's ImageFolder and a DataLoader, the same transform, uint8 to float before the model."""
    import torch
    import torchvision.transforms.v2 as T
    from torchvision.datasets import ImageFolder

    from harness.models import load_model
    from harness.tasks.images import ImageFolderTask

    task = ImageFolderTask(str(folder), resize=256, size=224)
    module = load_model(MODEL, task, checkpoint=str(weights)).module.eval().to(device)
    cuda = torch.device(device).type == "cuda"
    transform = T.Compose([T.Resize(256, antialias=True), T.CenterCrop(224), T.PILToTensor()])
    data = ImageFolder(str(folder), transform=transform)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, num_workers=workers, pin_memory=cuda,
                                         prefetch_factor=4 if workers else None)  # fmt: skip
    start = time.perf_counter()
    with torch.inference_mode():
        for images, _ in loader:
            module(images.to(device, non_blocking=True).float().div_(255)).cpu()
    return time.perf_counter() - start


def main() -> None:
    from harness.hardware.devices import describe, resolve
    from harness.tasks.stream import default_workers

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--plan-sizes", type=int, nargs="*", default=[], help="sizes measured for the plan only")
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "harness-scale")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    parser.add_argument("--merge", action="store_true", help="replace only the sizes measured now in --out")
    args = parser.parse_args()
    out: dict[str, object] = {
        "what": f"{MODEL} on generated 256 px JPEGs resized to 224, {args.workers} decoding workers, "
        f"batches of {args.batch_size}, on {args.device}",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "device": describe(resolve(args.device)),
        "sizes": json.loads(args.out.read_text())["sizes"] if args.merge and args.out.exists() else {},
    }
    weights = checkpoint(args.root)
    for n in sorted({*args.sizes, *args.plan_sizes}):
        folder = generate(args.root / f"n{n}", n)
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            env = {**os.environ, "HARNESS_CACHE": str(work / "cache"), "HF_HUB_OFFLINE": "1"}
            row: dict[str, object] = {"time": datetime.now(UTC).isoformat(timespec="seconds")}
            for name, command in commands(folder, work, args.workers, args.batch_size, weights, args.device).items():
                if n in args.sizes or name.startswith("dry_run"):
                    row[name] = measured(command, env)
                    print(f"N={n} {name}: {row[name]}", flush=True)
        out["sizes"][str(n)] = row  # type: ignore[index]
        if n not in args.sizes:
            continue
        harness_s, bare_s = [], []
        for repeat in range(args.repeats):  # alternated: the machine's load falls on both sides
            sides = [("harness", harness_s, clean_pass), ("bare", bare_s, bare_loop)]
            for _, times, fn in sides if repeat % 2 == 0 else sides[::-1]:
                times.append(fn(folder, args.workers, args.batch_size, weights, args.device))
        ratio = statistics.median(harness_s) / statistics.median(bare_s)
        row["clean_pass"] = {"harness_s": [round(t, 2) for t in harness_s], "bare_s": [round(t, 2) for t in bare_s],
                             "ratio_of_medians": round(ratio, 3)}  # fmt: skip
        print(f"N={n} clean pass: {row['clean_pass']}", flush=True)
    sizes: dict[str, dict] = out["sizes"]  # type: ignore[assignment]
    jobs = sorted(int(n) for n, row in sizes.items() if "accuracy_job" in row)  # sizes measured in full
    first, last = sizes[str(jobs[0])], sizes[str(jobs[-1])]
    commands_of = [k for k in last if k.endswith(("_job", "_cold", "_warm"))]
    largest = max(int(n) for n in sizes)
    out["targets"] = {
        f"peak memory at {jobs[-1]} images <= 2 GB": max(last[k]["peak_mb"] for k in commands_of) <= 2048,
        f"peak memory at {jobs[-1]} within 1.3x of {jobs[0]}": all(
            last[k]["peak_mb"] <= 1.3 * first[k]["peak_mb"] for k in commands_of
        ),
        f"warm plan <= 5 s at {largest} files": sizes[str(largest)]["dry_run_warm"]["seconds"] <= 5,
        f"clean pass at {jobs[-1]} <= 1.15x the bare loop": last["clean_pass"]["ratio_of_medians"] <= 1.15,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["targets"], indent=2))


if __name__ == "__main__":
    main()
