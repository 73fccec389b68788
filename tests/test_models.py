"""Model sources: the reference zoo, timm, and what happens with files that should not load."""

from __future__ import annotations

import pickle

import pytest
import torch
from safetensors.torch import save_file

from harness.models import check_model, load_model
from harness.models.base import IncompatibleError, ModelLoadError
from harness.models.zoo import catalog
from harness.registry import RegistryError
from harness.tasks import get_task

# Published test accuracies for such models: Fashion-MNIST (Xiao et al. 2017 and the benchmark on its
# site: ~84% linear, 88-89% MLP, 90-93% small CNN); Adult (~85% for logistic regression and small MLPs);
# German Credit (70-77%). Adversarial training and fairness mitigation cost some clean accuracy.
RANGES = {
    "fmnist-linear": (0.82, 0.86),
    "fmnist-mlp": (0.875, 0.905),
    "fmnist-cnn": (0.90, 0.935),
    "fmnist-cnn-adv": (0.80, 0.90),
    "fmnist-cnn-aug": (0.89, 0.935),
    "fmnist-resnet10t": (0.90, 0.94),
    "adult-logreg": (0.83, 0.87),
    "adult-mlp": (0.83, 0.87),
    "adult-mlp-fair": (0.82, 0.87),
    "german-logreg": (0.68, 0.80),
}


def test_every_zoo_model_has_a_range():
    assert set(RANGES) == set(catalog())


@pytest.mark.parametrize("name", sorted(catalog()))
def test_zoo_model_accuracy_in_published_range(name):
    task = get_task(catalog()[name]["task"])
    model = load_model(f"zoo:{name}", task)
    assert not model.module.training
    split = task.load()
    correct = sum(int((model.logits(x).argmax(1) == split.labels[rows]).sum()) for x, rows in split.batches(1000))
    low, high = RANGES[name]
    assert low <= correct / len(split) <= high
    info = model.info
    assert info["license"] and info["seed"] == 0 and "training_data" in info and info["parameters"] > 0
    params_bytes = sum(t.numel() * t.element_size() for t in model.module.state_dict().values())
    assert params_bytes <= 2 * 1024 * 1024


def test_zoo_fits_size_budget():
    from harness.models.zoo import weights_dir

    sizes = [p.stat().st_size for p in weights_dir().glob("*.safetensors")]
    assert len(sizes) == len(catalog())
    assert max(sizes) <= 2 * 1024 * 1024 and sum(sizes) <= 12 * 1024 * 1024


def test_fingerprint_is_stable_and_sensitive():
    task = get_task("fashion-mnist")
    a, b = load_model("zoo:fmnist-cnn", task), load_model("zoo:fmnist-cnn", task)
    assert a.fingerprint == b.fingerprint
    with torch.no_grad():
        next(b.module.parameters()).view(-1)[0] += 1e-3
    b.__dict__.pop("fingerprint")
    assert a.fingerprint != b.fingerprint
    assert a.fingerprint != load_model("zoo:fmnist-cnn-aug", task).fingerprint


def test_zoo_errors():
    with pytest.raises(RegistryError, match="Did you mean 'fmnist-cnn'"):
        load_model("zoo:fmnist-cn", get_task("fashion-mnist"))
    with pytest.raises(IncompatibleError, match="trained for task 'fashion-mnist'"):
        check_model("zoo:fmnist-cnn", get_task("adult"))
    with pytest.raises(RegistryError, match="unknown model source 'zo'"):
        load_model("zo:fmnist-cnn", get_task("fashion-mnist"))


def test_zoo_checkpoint_of_another_architecture(tmp_path):
    from harness.models.zoo import weights_dir

    with pytest.raises(ModelLoadError, match="do not fit the architecture"):
        load_model(
            "zoo:fmnist-cnn", get_task("fashion-mnist"), checkpoint=str(weights_dir() / "fmnist-linear.safetensors")
        )


@pytest.fixture
def resnet_checkpoint(tmp_path):
    task = get_task("fashion-mnist")
    torch.manual_seed(0)
    model = load_model("timm:resnet10t", task)
    state = model.module[1].state_dict()
    st, pth = tmp_path / "r10.safetensors", tmp_path / "r10.pth"
    save_file({k: v.contiguous() for k, v in state.items()}, str(st))
    torch.save(state, pth)
    return model, st, pth


@pytest.mark.parametrize("kind", ["safetensors", "pth"])
def test_timm_checkpoint_loads_through_pretrained_cfg_overlay(resnet_checkpoint, kind):
    original, st, pth = resnet_checkpoint
    task = get_task("fashion-mnist")
    loaded = load_model("timm:resnet10t", task, checkpoint=str(st if kind == "safetensors" else pth))
    x = task.load().inputs[:16]
    assert torch.allclose(original.logits(x), loaded.logits(x))
    assert loaded.fingerprint == original.fingerprint  # same weights, same fingerprint, wherever the file is
    assert loaded.info["weights"].startswith("checkpoint")


def test_timm_random_model_is_sized_for_the_task():
    task = get_task("fashion-mnist")
    model = load_model("timm:resnet10t", task)
    assert model.logits(task.load().inputs[:4]).shape == (4, 10)
    with pytest.raises(IncompatibleError, match="image model"):
        check_model("timm:resnet10t", get_task("adult"))
    with pytest.raises(RegistryError, match="unknown timm architecture 'resnet10x'"):
        check_model("timm:resnet10x", task)


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_bad_checkpoints_fail_clearly_and_never_unpickle_code(tmp_path):
    task = get_task("fashion-mnist")
    missing = tmp_path / "missing.pth"
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model("timm:resnet10t", task, checkpoint=str(missing))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(ModelLoadError, match=str(garbage.name)):
        load_model("timm:resnet10t", task, checkpoint=str(garbage))
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"conv.weight": Exploit(marker)}))
    with pytest.raises(ModelLoadError, match=r"evil\.pth"):
        load_model("timm:resnet10t", task, checkpoint=str(evil))
    assert not marker.exists()
    wrong = tmp_path / "wrong.safetensors"
    save_file({"fc.weight": torch.zeros(3, 3)}, str(wrong))
    with pytest.raises(ModelLoadError, match=r"wrong\.safetensors"):
        load_model("timm:resnet10t", task, checkpoint=str(wrong))
    not_safetensors = tmp_path / "fake.safetensors"
    not_safetensors.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match=r"fake\.safetensors"):
        load_model("zoo:fmnist-linear", task, checkpoint=str(not_safetensors))


@pytest.mark.parametrize("name", ["fmnist-resnet10t", "adult-mlp"])
def test_zoo_fingerprint_from_the_file_equals_the_loaded_models(name):
    from harness.models import fingerprint_model

    task = get_task(catalog()[name]["task"])
    assert fingerprint_model(f"zoo:{name}", task) == load_model(f"zoo:{name}", task).fingerprint
    assert fingerprint_model("timm:resnet10t", get_task("fashion-mnist")) is None  # timm must build to know
