"""Data as a stream: image folders fingerprinted from their bytes (a warm plan decodes nothing), read in
batches by worker processes with the same pixels as a whole decode, and a run whose peak memory does not
grow with the folder's size, as decoding it whole would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from byo_fixtures import image_folder
from helpers import everything
from PIL import Image

from harness.tasks import TaskError, get_task
from harness.tasks import index as file_index
from harness.tasks.images import ImageFolderTask, to_array


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))


def fingerprint(root: Path, **options) -> str:
    """A fresh task's fingerprint (``get_task`` keeps one instance per process)."""
    return ImageFolderTask(str(root), **options).fingerprint


def test_the_fingerprint_follows_the_files_bytes_and_the_decoding_options(tmp_path):
    root = image_folder(tmp_path)
    first = fingerprint(root)
    assert fingerprint(root) == first  # from the sidecar index
    picture = root / "test" / "cat" / "0.png"
    before = picture.read_bytes()
    picture.write_bytes(before)  # the same bytes, a new modification time: read again, same hash
    os.utime(picture, ns=(1, 1))
    assert fingerprint(root) == first
    Image.new("RGB", (24, 20), (9, 9, 9)).save(picture)  # one file changed
    changed = fingerprint(root)
    picture.write_bytes(before)
    assert changed != first and fingerprint(root) == first
    Image.new("RGB", (24, 20)).save(root / "test" / "dog" / "new.png")  # one file added
    added = fingerprint(root)
    (root / "test" / "dog" / "new.png").unlink()
    (root / "test" / "eel" / "5.png").unlink()  # one file removed
    removed = fingerprint(root)
    assert len({first, added, removed}) == 3
    assert fingerprint(root, size=16) not in {first, removed}  # what a model sees changed


def test_files_are_listed_in_pathlibs_order(tmp_path):
    """The listing works on strings for speed; the order it hashes is that of sorted pathlib paths
    (component by component: ``a/b`` before ``a-b``, though ``-`` sorts before ``/`` as characters)."""
    from harness.tasks.images import EXTENSIONS, image_files

    folder = tmp_path / "cat"
    for name in ("a/b.png", "a-b/c.PNG", "a b.jpg", "a/x/y.jpeg", "z.txt", "A.png", ".hidden.png", "a.b/c.png"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")
    expected = sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS)
    assert image_files(str(folder)) == [str(p) for p in expected]


def test_a_warm_plan_reads_no_image(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from harness import runner
    from harness.config import load_suite
    from harness.store import Store

    root = image_folder(tmp_path, per_class=4)
    user_code(tmp_path, monkeypatch)
    from tiny_net import Tiny

    save_file(Tiny(classes=3).state_dict(), tmp_path / "tiny.safetensors")
    spec = load_suite("quick").with_overrides(models=["torch:tiny_net:Tiny"], tasks=[f"imagefolder:{root}"],
                                              metrics=["accuracy"], checkpoint=str(tmp_path / "tiny.safetensors"),
                                              model_options={"classes": 3})  # fmt: skip
    with Store(tmp_path / "store") as store:
        cold = runner.plan(spec, store)

        def no_reading(path):
            raise AssertionError(f"a warm plan read {path}")

        monkeypatch.setattr(file_index, "_read", no_reading)
        monkeypatch.setattr(Image, "open", no_reading)
        warm = runner.plan(spec, store)
    assert [job.key for job in warm.jobs] == [job.key for job in cold.jobs]


def test_batches_from_workers_hold_the_pixels_of_a_whole_decode(tmp_path):
    root = image_folder(tmp_path, per_class=7, size=(30, 26))
    task = get_task(f"imagefolder:{root}", size=16, resize=20)
    split = task.load()
    assert split.streamed and len(split) == 21
    expected = torch.stack([torch.from_numpy(to_array(Image.open(root / "test" / f), 3, (16, 16), 20)).float() / 255
                            for f in split.attributes["file"]])  # fmt: skip
    for workers in (0, 2):
        batches = list(split.batches(4, workers=workers))
        assert torch.equal(torch.cat([b for b, _ in batches]), expected)
        assert np.array_equal(np.concatenate([rows for _, rows in batches]), np.arange(21))
    some = np.array([20, 3, 11])
    assert torch.equal(split.take(some, workers=2), expected[some])
    subset = split.subset(some)
    assert torch.equal(everything(subset), expected[some]) and subset.attributes["index"].tolist() == [20, 3, 11]


TINY = """
import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 8, stride=8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(4, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
"""


def user_code(root: Path, monkeypatch: pytest.MonkeyPatch | None = None) -> Path:
    """``tiny_net.Tiny``, a user's image network, in a folder (put on ``sys.path`` when given ``monkeypatch``)."""
    (root / "code").mkdir(exist_ok=True)
    (root / "code" / "tiny_net.py").write_text(TINY)
    if monkeypatch is not None:
        monkeypatch.setattr(sys, "path", [str(root / "code"), *sys.path])
        monkeypatch.delitem(sys.modules, "tiny_net", raising=False)
    return root / "code"


def jpeg_folder(root: Path, n: int, classes: int = 4, side: int = 256) -> Path:
    """``n`` smooth colour JPEGs of ``side`` pixels in ``classes`` class folders, generated."""
    rng = np.random.default_rng(0)
    base = np.linspace(0, 255, side, dtype=np.float32)
    for i in range(n):
        folder = root / "jpegs" / f"c{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        tint = rng.uniform(0.3, 1.0, 3)
        pixels = (base[:, None, None] * tint + base[None, :, None] * (1 - tint)) / 2 + rng.normal(0, 8, (side, 1, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{i}.jpg", quality=85)
    return root / "jpegs"


def peak_run(root: Path, n: int) -> float:
    """Runs the quick suite's metrics and one corruption through the command on ``n`` JPEGs resized to 224
    pixels; returns the peak resident memory of the run's largest process, in MB."""
    folder = jpeg_folder(root, n)
    code = user_code(root)
    (root / "suite.yaml").write_text(
        "name: stream\ngroups:\n  - tasks: [fashion-mnist]\n    models: [zoo:fmnist-cnn]\n    metrics:\n"
        "      - accuracy\n      - calibration\n"
        "      - corruption: {corruptions: [gaussian_noise], severities: [3]}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(code), "HARNESS_CACHE": str(root / "cache")}
    command = [sys.executable, "-m", "harness", "run", "--config", str(root / "suite.yaml"),
               "--model", "torch:tiny_net:Tiny", "--task", f"imagefolder:{folder}", "--task-option", "resize=256",
               "--task-option", "size=224", "--batch-size", "64", "--workers", "1", "--store", str(root / "store"),
               "--quiet"]  # fmt: skip
    with open(root / "log", "w") as log:
        child = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)  # the run's own peak (its largest process)
    assert os.waitstatus_to_exitcode(status) == 0, (root / "log").read_text()[-3000:]
    return usage.ru_maxrss / 1024


@pytest.mark.slow
def test_the_peak_memory_of_a_run_does_not_grow_with_the_folder(tmp_path):
    """The same run on 400 and on 2,000 JPEGs: the larger folder's peak resident memory is at most 100 MB
    above the smaller's (16 MB measured on 300 and 1,500). Holding the 1,600 more images decoded would add
    240 MB as uint8 (1,600 x 3 x 224 x 224 bytes; 184 MB measured on 1,200 with the reader made to hold them) and
    960 MB more as float32 (the landed code). The difference is compared, not the peak itself: what
    ``import torch`` and the CPU's kernels take varies between machines (960 MB for the 2,000-image run on
    one, 2,150 MB on another)."""
    small = peak_run(tmp_path / "small", 400)
    large = peak_run(tmp_path / "large", 2000)
    assert large - small < 100, f"peak resident memory {small:.0f} MB on 400 images, {large:.0f} MB on 2,000"


class ColourCode(torch.nn.Module):
    """A model whose logits are known: the class index written in an image's colour (red: index // 32,
    green: index % 32, in steps of 8), as one-hot logits over the 1,000 ImageNet classes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3)) * 255 / 8
        index = mean[:, 0].round().long() * 32 + mean[:, 1].round().long()
        return torch.nn.functional.one_hot(index, 1000).float()


def coloured(index: int) -> Image.Image:
    return Image.new("RGB", (300, 260), (index // 32 * 8, index % 32 * 8, 128))


def test_imagenet_val_reads_both_layouts_in_the_pretrained_class_order(tmp_path):
    """Class folders, flat files with LOC_val_solution.csv, flat files with the devkit (whose
    ILSVRC2012_IDs are not the class indices): each image's label is its class's index among the
    1,000 of timm's and torchvision's weights, so a model that knows the answer scores 100%."""
    from scipy.io import savemat

    from harness.context import EvalContext
    from harness.models.base import Model
    from harness.tasks.benchmarks import ImageNetVal, imagenet_synsets

    synsets = imagenet_synsets()
    assert len(synsets) == 1000 and synsets[0] == "n01440764" and list(synsets) == sorted(synsets)
    chosen = [5, 407, 999, 407, 5, 999]  # class index of each image
    folders = tmp_path / "folders"
    flat = tmp_path / "flat" / "val"
    flat.mkdir(parents=True)
    for number, index in enumerate(chosen, start=1):
        (folders / synsets[index]).mkdir(parents=True, exist_ok=True)
        coloured(index).save(folders / synsets[index] / f"{number}.JPEG", quality=95)
        coloured(index).save(flat / f"ILSVRC2012_val_{number:08d}.JPEG", quality=95)
    rows = [f"ILSVRC2012_val_{n:08d},{synsets[i]} 1 2 3 4" for n, i in enumerate(chosen, start=1)]
    (tmp_path / "flat" / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n" + "\n".join(rows) + "\n")
    devkit = tmp_path / "devkit" / "data"
    devkit.mkdir(parents=True)
    ilsvrc_id = {wnid: 1000 - k for k, wnid in enumerate(synsets)}  # the devkit's own numbering
    records = np.array([(ilsvrc_id[w], w) for w in synsets], dtype=[("ILSVRC2012_ID", "i4"), ("WNID", "O")])
    savemat(devkit / "meta.mat", {"synsets": records})
    (devkit / "ILSVRC2012_validation_ground_truth.txt").write_text(
        "\n".join(str(ilsvrc_id[synsets[i]]) for i in chosen)
    )

    model = Model("colour-code", ColourCode(), "image")
    layouts = {"folders": ImageNetVal(str(folders)), "solution": ImageNetVal(str(flat)),
               "devkit": ImageNetVal(str(flat), labels=str(tmp_path / "devkit"))}  # fmt: skip
    for layout, task in layouts.items():
        assert task.num_classes == 1000 and task.input_shape == (3, 224, 224), layout
        split = task.load()
        assert sorted(split.labels.tolist()) == sorted(chosen), layout
        ctx = EvalContext(model, task, split, torch.device("cpu"), 4, 0, 10, "t", {}, workers=2)
        assert ctx.clean.correct.all(), layout
    with pytest.raises(TaskError, match="no labels: pass labels=PATH"):
        ImageNetVal(str(tmp_path / "flat" / "val"), labels=str(tmp_path / "nowhere.csv"))
    (folders / "not-a-class").mkdir()
    coloured(0).save(folders / "not-a-class" / "x.JPEG")
    with pytest.raises(TaskError, match="not ImageNet-1k classes"):
        ImageNetVal(str(folders))


def test_imagenet_c_folders_are_read_and_recorded_like_generated_corruptions(tmp_path):
    """ImageNet-C's layout (<corruption>/<severity>/<wnid>/<file>, 224-pixel crops) beside a validation
    folder: the corruption metric reads those images instead of generating them, records the same figures
    under the same names and slices, and keys them by the folder's files, not the corruption code. The
    model reads the class from the colour, so the accuracy is known: 4 of the 6 corrupted images are
    painted in their own class's colour."""
    from harness.context import EvalContext
    from harness.metrics.corruption import Corruption, CorruptionParams
    from harness.models.base import Model
    from harness.tasks.benchmarks import ImageNetC, imagenet_synsets

    synsets = imagenet_synsets()
    chosen, painted = [5, 407, 999, 407, 5, 999], [5, 407, 999, 0, 5, 3]
    val, corrupted = tmp_path / "val", tmp_path / "imagenet-c"
    for number, (index, shown) in enumerate(zip(chosen, painted, strict=True), start=1):
        name = f"ILSVRC2012_val_{number:08d}.JPEG"
        for folder, colour, size in ((val, index, (300, 260)), (corrupted / "fog" / "2", shown, (224, 224))):
            (folder / synsets[index]).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", size, (colour // 32 * 8, colour % 32 * 8, 128)).save(folder / synsets[index] / name)
    task = ImageNetC(str(val), corrupted=str(corrupted))
    metric, params = Corruption(), CorruptionParams(corruptions=("fog",), severities=(2,), baseline=None)
    params = metric.resolve(params, task, n=6, cut=False)
    depends = metric.depends(params, task)
    assert set(depends) == {"pregenerated"} and set(depends["pregenerated"]) == {"fog@2"}
    ctx = EvalContext(Model("colour-code", ColourCode(), "image"), task, task.load(), torch.device("cpu"), 4, 0, 10,
                      "t", {}, workers=0)  # fmt: skip
    records = metric.compute(ctx, params)
    accuracy = next(r for r in records if r.metric == "corruption.accuracy")
    assert accuracy.slice == "corruption=fog@2" and accuracy.value == pytest.approx(4 / 6) and accuracy.n == 6
    assert ctx.outputs["corruption"]["fog@2"].tolist() == [True, True, True, False, True, False]
    Image.new("RGB", (224, 224)).save(corrupted / "fog" / "2" / synsets[5] / "ILSVRC2012_val_00000001.JPEG")
    again = ImageNetC(str(val), corrupted=str(corrupted))
    assert metric.depends(params, again)["pregenerated"]["fog@2"] != depends["pregenerated"]["fog@2"]
    with pytest.raises(TaskError, match=r"imagenet-c/fog/3 does not exist; .* holds \['fog'\]"):
        metric.depends(params.model_copy(update={"severities": (3,)}), again)
