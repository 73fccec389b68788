"""Bring-your-own models: transformers (image, text), timm (random, checkpoint, published config), torch
files. Each is saved as users and the hub save them and loaded through its public name; its logits are
checked against the library called directly."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import timm
import torch
import transformers
from byo_fixtures import image_dataset, image_folder, text_dataset, tiny_image_model, tiny_text_model
from helpers import everything
from safetensors.torch import save_file

from harness.models import check_model, load_model
from harness.models.base import IncompatibleError, ModelLoadError
from harness.models.hf_source import label_order
from harness.tasks import get_task
from harness.tasks.text import decode_texts


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    return SimpleNamespace(
        root=root, bert=tiny_text_model(root), vit=tiny_image_model(root), reviews=text_dataset(root),
        shapes=image_dataset(root), folder=image_folder(root),
    )  # fmt: skip


def test_hf_text_model_tokenises_inside_and_matches_transformers(hub):
    task = get_task(f"hf:{hub.reviews}")
    model = load_model(f"hf:{hub.bert}", task)
    rows = everything(task.load())[:10]
    ours = model.logits(rows)
    tokenizer = transformers.AutoTokenizer.from_pretrained(hub.bert)
    reference = transformers.AutoModelForSequenceClassification.from_pretrained(hub.bert).eval()
    with torch.no_grad():
        expected = reference(**tokenizer(decode_texts(rows), padding=True, return_tensors="pt")).logits
    assert torch.allclose(ours, expected, atol=1e-5)
    assert (ours.argmax(1) == task.load().labels[:10]).float().mean() >= 0.8  # it learned the sentiment words
    assert model.info["labels"] == ["negative", "positive"] and model.info["parameters"] > 1000
    assert model.info["revision"] == "local files" and model.info["license"] == "unknown"
    assert model.fingerprint == load_model(f"hf:{hub.bert}", task).fingerprint


def test_hf_image_model_preprocesses_inside_and_matches_its_processor(hub):
    task = get_task(f"hf:{hub.shapes}")
    model = load_model(f"hf:{hub.vit}", task)
    pixels = everything(task.load())[:6]
    processor = transformers.AutoImageProcessor.from_pretrained(hub.vit)
    reference = transformers.AutoModelForImageClassification.from_pretrained(hub.vit).eval()
    images = [(x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for x in pixels]
    with torch.no_grad():
        expected = reference(**processor(images, return_tensors="pt")).logits
    assert torch.allclose(model.logits(pixels), expected, atol=1e-4)
    # gradients reach the raw pixels through the resize and the normalisation (attacks need them)
    folder = get_task(f"imagefolder:{hub.folder}")
    with pytest.raises(IncompatibleError, match=r"labels \['r', 'g', 'b'\] are not the classes"):
        load_model(f"hf:{hub.vit}", folder)
    x = everything(folder.load())[:2].clone().requires_grad_(True)
    vit_on_folder = tiny_image_model(hub.root / "folder-vit", labels=("cat", "dog", "eel"))
    load_model(f"hf:{vit_on_folder}", folder).module(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_label_names_are_matched_to_the_task_and_reordered():
    task = SimpleNamespace(name="t", classes=("cat", "dog", "eel"), num_classes=3)
    config = SimpleNamespace(num_labels=3, id2label={0: "Eel", 1: "cat", 2: "dog"})
    assert label_order(config, task, "m") == [1, 2, 0]
    assert label_order(SimpleNamespace(num_labels=3, id2label={0: "cat", 1: "dog", 2: "eel"}), task, "m") is None
    assert label_order(SimpleNamespace(num_labels=3, id2label={i: f"LABEL_{i}" for i in range(3)}), task, "m") is None
    with pytest.raises(IncompatibleError, match="predicts 2 classes"):
        label_order(SimpleNamespace(num_labels=2, id2label={0: "a", 1: "b"}), task, "m")


def test_hf_refusals_name_the_model_and_the_way_out(hub, tmp_path, monkeypatch):
    text, image = get_task(f"hf:{hub.reviews}"), get_task(f"hf:{hub.shapes}")
    with pytest.raises(IncompatibleError, match=r"is a text classifier; task .* is image"):
        check_model(f"hf:{hub.bert}", image)
    with pytest.raises(IncompatibleError, match=r"is an image classifier; task .* is text"):
        check_model(f"hf:{hub.vit}", text)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE=1 is set"):
        check_model("hf:nobody/no-such-model-xyz", text)
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "config.json").write_text(json.dumps(
        {"model_type": "not-in-transformers", "auto_map": {"AutoConfig": "custom.CustomConfig"}}))  # fmt: skip
    with pytest.raises(ModelLoadError, match="--trust-remote-code"):
        check_model(f"hf:{remote}", text)


def test_timm_random_checkpoint_and_another_architecture(tmp_path, hub):
    task = get_task(f"imagefolder:{hub.folder}")
    model = load_model("timm:resnet10t", task)
    assert model.module(everything(task.load())[:2]).shape == (2, 3)
    assert model.info["weights"] == "random initialisation"
    body = timm.create_model("resnet10t", num_classes=3, in_chans=3)
    save_file(body.state_dict(), tmp_path / "r10.safetensors")
    torch.save(body.state_dict(), tmp_path / "r10.pth")
    expected = body.eval()(model.module[0](everything(task.load())[:4]))
    for file in ("r10.safetensors", "r10.pth"):
        loaded = load_model("timm:resnet10t", task, checkpoint=str(tmp_path / file))
        assert torch.allclose(loaded.logits(everything(task.load())[:4]), expected, atol=1e-5)
    assert loaded.fingerprint != model.fingerprint
    with pytest.raises(ModelLoadError, match="timm:resnet18: could not build the model from"):
        load_model("timm:resnet18", task, checkpoint=str(tmp_path / "r10.safetensors"))


def test_a_checkpointed_models_fingerprint_is_remembered_and_a_warm_plan_imports_no_timm(tmp_path, hub, monkeypatch):
    """A model that only its files determine is built once; later plans take its fingerprint from the
    cache, keyed by the checkpoint's stamp. Replacing the checkpoint forgets it; a random timm model
    (drawn anew at each build) is never remembered."""
    import os
    import subprocess

    from harness.models import fingerprint_model, remember_fingerprint

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    task = get_task(f"imagefolder:{hub.folder}")
    weights = tmp_path / "r10.safetensors"
    save_file(timm.create_model("resnet10t", num_classes=3, in_chans=3).state_dict(), weights)
    for name in ("timm:resnet10t", "timm:resnet10t+int8"):
        assert fingerprint_model(name, task, checkpoint=str(weights)) is None
        built = load_model(name, task, checkpoint=str(weights)).fingerprint
        remember_fingerprint(name, task, built, checkpoint=str(weights))
        assert fingerprint_model(name, task, checkpoint=str(weights)) == built
    random = load_model("timm:resnet10t", task)
    remember_fingerprint("timm:resnet10t", task, random.fingerprint)
    assert fingerprint_model("timm:resnet10t", task) is None
    plan = (f"import sys\nfrom harness.cli import main\nsys.argv = ['harness', 'run', '--model', 'timm:resnet10t', "
            f"'--task', 'imagefolder:{hub.folder}', '--checkpoint', '{weights}', '--metric', 'accuracy', "
            f"'--dry-run', '--store', '{tmp_path / 'store'}', '--quiet']\ntry:\n    main()\nexcept SystemExit:\n"
            "    pass\nprint('timm' in sys.modules)")  # fmt: skip
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache")}
    warm = subprocess.run([sys.executable, "-c", plan], capture_output=True, text=True, env=env, check=True)
    assert warm.stdout.strip().endswith("False"), warm.stdout + warm.stderr
    save_file(timm.create_model("resnet10t", num_classes=3, in_chans=3).state_dict(), weights)  # new weights
    os.utime(weights, ns=(1, 1))  # and a new stamp even on a file system with coarse times
    assert fingerprint_model("timm:resnet10t", task, checkpoint=str(weights)) is None
    cold = subprocess.run([sys.executable, "-c", plan], capture_output=True, text=True, env=env, check=True)
    # a dry run builds no model: the new weights' fingerprint is not known until a run builds them
    assert cold.stdout.strip().endswith("False") and "not built" in cold.stdout, cold.stdout + cold.stderr


def test_timm_published_config_resizes_and_normalises_inside(tmp_path, hub):
    """``pretrained=True`` goes through timm's pretrained loader; a file overlay stands in for the hub. In
    memory, images are resized inside the model; read from files, they are decoded for it."""
    task = get_task(f"imagefolder:{hub.folder}")
    body = timm.create_model("test_vit", num_classes=3)
    save_file(body.state_dict(), tmp_path / "vit.safetensors")
    overlay = {"file": str(tmp_path / "vit.safetensors"), "num_classes": 3}
    model = load_model("timm:test_vit", task, pretrained=True, pretrained_cfg_overlay=overlay)
    preprocess = model.module[0]
    assert preprocess.size == (160, 160) and preprocess.resize == round(160 / 0.95) and preprocess.mode == "bicubic"
    x = everything(task.load())[:2]
    assert preprocess(x).shape == (2, 3, 160, 160)
    assert torch.allclose(model.logits(x), body.eval()(preprocess(x)), atol=1e-5)
    # read from files, the images are decoded for the model in the workers, as timm's evaluation transform
    # does (shorter side to 168 bicubic, centre crop 160), and not resized again inside it
    from PIL import Image

    from harness.context import EvalContext
    from harness.decoding import Decoding
    from harness.tasks.images import to_array

    assert model.decoding == Decoding(size=(160, 160), resize=168, interpolation="bicubic")
    assert model.config["decoding"] == {"size": [160, 160], "resize": 168, "interpolation": "bicubic"}
    split = task.load()
    ctx = EvalContext(model, task, split, torch.device("cpu"), 8, 0, 10, "t", {}, workers=0)
    files = [hub.folder / "test" / f for f in split.attributes["file"]]
    pixels = np.stack([to_array(Image.open(f), 3, (160, 160), 168, "bicubic") for f in files])
    assert torch.equal(everything(ctx.split), torch.from_numpy(pixels).float() / 255)
    expected = body(preprocess.normalize(torch.from_numpy(pixels).float() / 255))
    assert np.allclose(ctx.clean.logits, expected.detach().numpy(), atol=1e-4)
    assert ctx.split.fingerprint != split.fingerprint and ctx.split.decoding
    limited = EvalContext(model, task, split.subset(np.array([5, 1])), torch.device("cpu"), 8, 0, 10, "t", {})
    assert torch.equal(everything(limited.split), torch.from_numpy(pixels[[5, 1]]).float() / 255)  # under --limit
    save_file(timm.create_model("test_vit").state_dict(), tmp_path / "vit1k.safetensors")
    with pytest.raises(IncompatibleError, match=r"predicts 1000 classes; task .* has 3"):
        load_model(
            "timm:test_vit", task, pretrained=True, pretrained_cfg_overlay={"file": str(tmp_path / "vit1k.safetensors")}
        )


class Net(torch.nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.head = torch.nn.Linear(4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).mean((2, 3)))


def test_torch_sources_torchscript_state_dicts_and_refusals(tmp_path, hub, monkeypatch):
    monkeypatch.setitem(sys.modules, "user_models", SimpleNamespace(Net=Net))
    task = get_task(f"imagefolder:{hub.folder}")
    x = everything(task.load())[:4]
    torch.manual_seed(0)
    net = Net().eval()
    torch.jit.script(net).save(str(tmp_path / "net.pt"))
    assert torch.allclose(load_model(f"torch:{tmp_path / 'net.pt'}", task).logits(x), net(x), atol=1e-6)
    save_file(net.state_dict(), tmp_path / "net.safetensors")
    torch.save({"state_dict": net.state_dict(), "epoch": 3}, tmp_path / "net.pth")
    for file in ("net.safetensors", "net.pth"):
        loaded = load_model("torch:user_models:Net", task, checkpoint=str(tmp_path / file))
        assert torch.allclose(loaded.logits(x), net(x), atol=1e-6)
        assert loaded.info["weights"].endswith(file)
    with pytest.raises(ModelLoadError, match=r"2 of another shape \(head.weight is \[3, 4\] in the file, \[5, 4\]"):
        load_model("torch:user_models:Net", task, checkpoint=str(tmp_path / "net.safetensors"), classes=5)
    torch.save(net, tmp_path / "pickled.pt")  # a whole pickled module: never unpickled
    with pytest.raises(ModelLoadError, match=r"is not a TorchScript file.*cannot be loaded safely"):
        load_model(f"torch:{tmp_path / 'pickled.pt'}", task)
    with pytest.raises(ModelLoadError, match="not a state dict that can be loaded safely"):
        load_model("torch:user_models:Net", task, checkpoint=str(tmp_path / "pickled.pt"))
    with pytest.raises(ModelLoadError, match="cannot import module 'no_such_module'"):
        load_model("torch:no_such_module:Net", task)


def test_a_model_class_imports_from_the_working_directory(tmp_path, monkeypatch):
    """``torch:mynets:Net`` finds ``mynets.py`` where the user runs harness, without PYTHONPATH."""
    from harness.models.torch_source import import_class

    (tmp_path / "mynets_here.py").write_text("from torch import nn\n\n\nclass Net(nn.Module):\n    pass\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert import_class("mynets_here:Net", "torch:mynets_here:Net").__name__ == "Net"
    assert str(tmp_path) == sys.path[-1]


def test_terminal_escapes_are_taken_out_of_messages():
    from harness.errors import plain

    coloured = "\x1b[1mWeights only load failed\x1b[0m: see \x1b[31mabove\x1b[0m"
    assert plain(coloured) == "Weights only load failed: see above"


def test_a_zoo_checkpoint_of_another_dtype_is_fingerprinted_as_it_loads(tmp_path):
    """A float64 copy of a zoo model's weights loads into the float32 network: the fingerprint a plan
    takes from the file must be the loaded model's, or the run refuses it as replaced mid-run."""
    from safetensors.torch import load_file, save_file

    from harness.models import fingerprint_model, load_model
    from harness.models.zoo import weights_dir
    from harness.tasks import get_task

    task = get_task("fashion-mnist")
    state = load_file(str(weights_dir() / "fmnist-linear.safetensors"))
    path = tmp_path / "linear64.safetensors"
    save_file({k: v.double() for k, v in state.items()}, str(path))
    planned = fingerprint_model("zoo:fmnist-linear", task, checkpoint=str(path))
    assert planned == load_model("zoo:fmnist-linear", task, checkpoint=str(path)).fingerprint
    assert planned == fingerprint_model("zoo:fmnist-linear", task)  # the same numbers as the shipped file
