"""Bring your own model and data, through the real command: every suite on a non-zoo model of each
modality, the bad inputs a user hits (exit status 2 and a message naming the input), and a third-party
plugin package installed into this environment."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from byo_fixtures import (
    image_dataset,
    image_folder,
    table,
    tabular_module,
    text_dataset,
    tiny_image_model,
    tiny_text_model,
)
from test_cli import harness

from harness.export import export_table

SUITES = ("quick", "robustness", "fairness", "interpretability", "efficiency")
PLUGIN = Path(__file__).resolve().parents[1] / "examples" / "harness-plugin-example"


@pytest.fixture(scope="module")
def byo(tmp_path_factory):
    root = tmp_path_factory.mktemp("byo")
    return SimpleNamespace(
        root=root, bert=tiny_text_model(root), vit=tiny_image_model(root), reviews=text_dataset(root),
        shapes=image_dataset(root), folder=image_folder(root), csv=table(root), code=tabular_module(root),
    )  # fmt: skip


def metrics_in(store: Path) -> set[str]:
    with sqlite3.connect(store / "results.sqlite") as db:
        return {row[0].split(".")[0] for row in db.execute("SELECT DISTINCT metric FROM records")}


def modality_runs(byo) -> dict[str, tuple[list[str], dict[str, str]]]:
    return {
        "image": ([f"--model=hf:{byo.vit}", f"--task=hf:{byo.shapes}", "--task-option=attributes=[site]"], {}),
        "text": ([f"--model=hf:{byo.bert}", f"--task=hf:{byo.reviews}", "--task-option=attributes=[dialect]"], {}),
        "tabular": (
            ["--model=torch:user_tabular:TabularNet", f"--task=csv:{byo.csv}", "--task-option=label=approved",
             "--task-option=sensitive=[sex]", "--task-option=test_fraction=0.3"],
            {"PYTHONPATH": f"{byo.code}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
        ),
    }  # fmt: skip


EXPECTED = {
    "quick": {"accuracy", "calibration"},
    "robustness": {"image": {"adversarial", "corruption"}, "text": {"corruption"}, "tabular": {"tabular_shift"}},
    "fairness": {"fairness"},
    "interpretability": {"interpretability"},
    "efficiency": {"efficiency"},
}


@pytest.mark.slow
@pytest.mark.parametrize("modality", ["image", "text", "tabular"])
def test_every_suite_runs_on_a_model_and_task_of_each_modality(byo, tmp_path, modality):
    args, env = modality_runs(byo)[modality]
    for suite in SUITES:
        store = tmp_path / suite
        proc = harness("run", "--suite", suite, *args, "--limit", "24", store=store, env=env)
        expected = EXPECTED[suite]
        expected = expected[modality] if isinstance(expected, dict) else expected
        assert expected <= metrics_in(store), (suite, metrics_in(store), proc.stderr[-2000:])
        tables = ("records", "jobs", "runs") if suite == "efficiency" else ("records", "examples", "jobs", "runs")
        for what in tables:  # every table of every suite's store to Parquet (efficiency keeps no per-example rows)
            rows = export_table(store, what, tmp_path / f"{suite}-{what}.parquet", "parquet")
            assert len(pd.read_parquet(tmp_path / f"{suite}-{what}.parquet")) == rows > 0, (suite, what)
    if modality == "text":  # text perturbations land as the image corruptions do
        with sqlite3.connect(tmp_path / "robustness" / "results.sqlite") as db:
            slices = {r[0] for r in db.execute("SELECT slice FROM records WHERE metric='corruption.accuracy'")}
        assert {"corruption=typo@1", "corruption=case@5", "corruption=whitespace@3"} <= slices


BAD = {
    "not an ImageFolder": (["--task", "imagefolder:{flat}"], "is not an ImageFolder: expected one sub-folder"),
    "CSV without the label": (["--task", "csv:{csv}", "--task-option", "label=outcome"],
                              "label column ['outcome'] not in"),
    "missing split": (["--task", "hf:{reviews}", "--split", "validation"], "no split 'validation'"),
    "hub model offline": (["--model", "hf:nobody/no-model-xyz", "--task", "hf:{reviews}"], "HF_HUB_OFFLINE=1 is set"),
    "hub data offline": (["--task", "hf:nobody/no-data-xyz"], "HF_DATASETS_OFFLINE=1 is set"),
    "checkpoint of another architecture": (["--model", "timm:resnet18", "--checkpoint", "{ckpt}", "--task",
                                            "imagefolder:{folder}"], "could not build the model from"),
    "text model on an image task": (["--model", "hf:{bert}", "--task", "imagefolder:{folder}"],
                                    "is a text classifier; task"),
    "unknown task option": (["--task", "imagefolder:{folder}", "--task-option", "colour=red"],
                            "unknown option 'colour'"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_2_naming_the_input(byo, tmp_path, case):
    import timm
    from PIL import Image
    from safetensors.torch import save_file

    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (4, 4)).save(flat / "a.png")
    ckpt = tmp_path / "r10.safetensors"
    save_file(timm.create_model("resnet10t", num_classes=3).state_dict(), ckpt)
    args, message = BAD[case]
    values = {"flat": flat, "ckpt": ckpt, **vars(byo)}
    args = [a.format(**values) for a in args]
    if "--model" not in args:
        args += ["--model", f"hf:{byo.bert}" if "reviews" in " ".join(args) else "timm:resnet10t"]
    proc = harness("run", *args, "--metric", "accuracy", store=tmp_path / "store", check=False,
                   env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert message in " ".join(proc.stderr.split()), proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def plugin_installed():
    """The example plugin package, installed into this environment as a user would install it."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--force-reinstall",
        str(PLUGIN),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_a_plugin_package_adds_a_model_and_a_task_that_any_suite_can_name(plugin_installed, tmp_path):
    listing = harness("list").stdout
    assert "blobs" in listing and "centroid:euclidean" in listing and "centroid:manhattan" in listing
    suite = tmp_path / "mine.yaml"
    suite.write_text(
        "name: mine\n"
        "groups:\n"
        "  - models: [centroid:euclidean, centroid:manhattan]\n"
        "    tasks: [blobs]\n"
        "    metrics: [accuracy, fairness, {interpretability: {methods: [feature-ablation]}}]\n"
    )
    store = tmp_path / "store"
    proc = harness("run", "--config", str(suite), store=store)
    assert {"accuracy", "fairness", "interpretability"} <= metrics_in(store)
    with sqlite3.connect(store / "results.sqlite") as db:
        (accuracy,) = db.execute(
            "SELECT value FROM records WHERE model='centroid:euclidean' AND metric='accuracy.top1'"
        ).fetchone()
        groups = {r[0] for r in db.execute("SELECT slice FROM records WHERE metric LIKE 'fairness.%'")}
    assert 0.7 < accuracy < 1.0, proc.stdout  # three overlapping blobs: well above chance, not perfect
    assert any("group=b" in s for s in groups)
    # the suite is checked like a built-in one: a misspelt plugin name gets a did-you-mean
    suite.write_text(suite.read_text().replace("tasks: [blobs]", "tasks: [blob]"))
    bad = harness("run", "--config", str(suite), store=store, check=False)
    assert bad.returncode == 2 and "Did you mean 'blobs'" in bad.stderr


def test_bad_data_is_refused_and_the_opt_ins_name_what_they_left_out_in_every_spec(byo, tmp_path):
    frame = pd.read_csv(byo.csv)
    frame.loc[[2, 3], "approved"] = None
    unlabelled = tmp_path / "unlabelled.csv"
    frame.to_csv(unlabelled, index=False)
    folder = tmp_path / "photos"
    shutil.copytree(byo.folder, folder)
    (folder / "test" / "cat" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    env = {"PYTHONPATH": f"{byo.code}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    tabular = ["--model", "torch:user_tabular:TabularNet", "--task", f"csv:{unlabelled}", "--task-option",
               "label=approved", "--task-option", "test_fraction=0.3", "--metric", "accuracy"]  # fmt: skip
    images = ["--model", "timm:resnet10t", "--task", f"imagefolder:{folder}", "--metric", "accuracy"]
    for args, refused, option, said in (
        (tabular, "rows of", "drop_missing_labels=true", "rows without a label (drop_missing_labels)"),
        (images, "cannot be read as images", "skip_unreadable=true", "1 unreadable files (skip_unreadable): cat/"),
    ):
        store = tmp_path / option.split("=")[0]
        proc = harness("run", *args, store=store, check=False, env=env)
        assert proc.returncode == 2 and refused in " ".join(proc.stderr.split()), proc.stderr
        proc = harness("run", *args, "--task-option", option, store=store, env=env)
        assert said in " ".join(proc.stderr.split())
        (spec,) = [json.loads(s) for (s,) in sqlite3.connect(store / "results.sqlite").execute("SELECT spec FROM jobs")]
        assert spec["task"]["excluded"], spec["task"]
    assert spec["task"]["excluded"] == {"unreadable_files": ["cat/broken.jpg"]}
