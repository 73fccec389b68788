"""Model variants (``+int8``, ``+prune=0.5``, ``+bf16``): names, determinism, fingerprint lineage,
refusal at plan time, and each transform's figure checked independently (int8 and bf16 logits against
the float32 parent within a stated tolerance, the pruned fraction exact)."""

from __future__ import annotations

import io

import pytest
import torch
from test_cli import harness

from harness.hardware import size
from harness.models import canonical_name, check_model, load_model
from harness.registry import RegistryError
from harness.tasks import get_task
from harness.variants import derived_fingerprint, lineage_step, split_name, steps


@pytest.fixture(scope="module")
def fmnist():
    task = get_task("fashion-mnist")
    return task, task.load().inputs[:512]


def test_names_parse_canonicalise_and_fail_clearly(fmnist):
    task, _ = fmnist
    assert split_name("timm:resnet18+prune=0.5+int8") == ("timm:resnet18", [("prune", "0.5"), ("int8", None)])
    assert canonical_name("zoo:fmnist-cnn+prune=0.50+int8") == "zoo:fmnist-cnn+prune=0.5+int8"
    with pytest.raises(RegistryError, match=r"unknown variant 'int9'\. Did you mean 'int8'"):
        check_model("zoo:fmnist-cnn+int9", task)
    with pytest.raises(RegistryError, match=r"between 0 and 1 exclusive .* got '1\.5'"):
        check_model("zoo:fmnist-cnn+prune=1.5", task)
    with pytest.raises(RegistryError, match="int8 takes no value"):
        check_model("zoo:fmnist-cnn+int8=4", task)


def size_of(module: torch.nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.tell()


def test_int8_quantizes_linear_layers_for_real_close_to_float32(fmnist):
    """Dynamic int8 (fbgemm kernels): every Linear replaced, the weights under a third of the bytes, logits
    within 2% of the largest float32 logit of the parent (measured on 512 images: 0.34 at most, logits up
    to 40.3, 0.85%) and the same top-1 on at least 99% of them (measured: 100%)."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    task, x = fmnist
    parent = load_model("zoo:fmnist-mlp", task)
    variant = load_model("zoo:fmnist-mlp+int8", task)
    assert not any(isinstance(m, torch.nn.Linear) and not isinstance(m, DynamicLinear)
                   for m in variant.module.modules())  # fmt: skip
    assert size_of(variant.module) < size_of(parent.module) / 3
    # the efficiency metric counts the packed int8 weights: the same parameters, a third of the bytes
    assert size.parameters(variant.module) == size.parameters(parent.module)
    assert size.weight_bytes(variant.module) < size.weight_bytes(parent.module) / 3
    ours, theirs = variant.logits(x), parent.logits(x)
    assert float((ours - theirs).abs().max()) < 0.02 * float(theirs.abs().max())
    assert float((ours.argmax(1) == theirs.argmax(1)).float().mean()) >= 0.99
    # deterministic, and named by its lineage: the parent's fingerprint and the transform
    again = load_model("zoo:fmnist-mlp+int8", task)
    assert torch.equal(again.logits(x), ours) and again.fingerprint == variant.fingerprint
    assert torch.equal(variant.logits(x[:7]), ours[:7])  # an example's logits do not depend on its batch
    step = {"variant": "int8", "version": 2, "params": {}}
    assert variant.fingerprint == derived_fingerprint(parent.fingerprint, step) != parent.fingerprint
    assert variant.info["lineage"] == [step] and variant.info["variant_of"] == "zoo:fmnist-mlp"
    assert variant.info["parameters"] == parent.info["parameters"]
    assert torch.equal(parent.logits(x), theirs)  # the parent is untouched


def test_prune_zeroes_exactly_that_fraction_of_the_smallest_weights(fmnist):
    from harness.variants.prune import prunable

    task, _ = fmnist
    parent = load_model("zoo:fmnist-cnn", task)
    variant = load_model("zoo:fmnist-cnn+prune=0.7", task)
    weights = torch.cat([getattr(m, n).detach().flatten() for m, n in prunable(variant.module)])
    before = torch.cat([getattr(m, n).detach().flatten() for m, n in prunable(parent.module)])
    assert int((weights == 0).sum()) == round(0.7 * len(weights)) and int((before == 0).sum()) == 0
    threshold = before.abs().kthvalue(round(0.7 * len(before))).values  # global L1: the smallest magnitudes go
    assert bool(((weights == 0) == (before.abs() <= threshold)).all())
    kept = weights != 0
    assert torch.equal(weights[kept], before[kept])
    assert variant.fingerprint != load_model("zoo:fmnist-cnn+prune=0.5", task).fingerprint
    chained = load_model("zoo:fmnist-cnn+prune=0.7+int8", task)
    expected = parent.fingerprint
    for transform, params in steps("zoo:fmnist-cnn+prune=0.7+int8"):
        expected = derived_fingerprint(expected, lineage_step(transform, params))
    assert chained.fingerprint == expected
    assert [s["variant"] for s in chained.info["lineage"]] == ["prune", "int8"]
    assert chained.info["variant_of"] == "zoo:fmnist-cnn"


@pytest.mark.parametrize(
    ("variant", "dtype", "tolerance"), [("bf16", torch.bfloat16, 0.25), ("fp16", torch.float16, 0.02)]
)
def test_casts_run_in_their_precision_close_to_float32(fmnist, variant, dtype, tolerance):
    """bf16 keeps 8 bits of mantissa, fp16 11: logits within 0.25 and 0.02 of float32's (measured: 0.09
    and 0.006 at most over 512 images), top-1 the same on at least 98%."""
    task, x = fmnist
    parent, cast = load_model("zoo:fmnist-cnn", task), load_model(f"zoo:fmnist-cnn+{variant}", task)
    assert {p.dtype for p in cast.module.parameters()} == {dtype}
    ours, theirs = cast.logits(x), parent.logits(x)
    assert ours.dtype == torch.float32 and float((ours - theirs).abs().max()) < tolerance * float(theirs.abs().max())
    assert float((ours.argmax(1) == theirs.argmax(1)).float().mean()) >= 0.99


CONV_ONLY = """
import torch


class ConvOnly(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 10, 28)

    def forward(self, x):
        return self.conv(x).flatten(1)
"""


def test_a_variant_that_cannot_apply_is_refused_at_plan_time_with_the_reason(tmp_path):
    (tmp_path / "conv_only.py").write_text(CONV_ONLY)
    args = ("run", "--model", "torch:conv_only:ConvOnly+int8", "--task", "fashion-mnist", "--metric", "accuracy")
    proc = harness(*args, store=tmp_path / "store", check=False, env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 2, proc.stderr
    assert "has no Linear layer to quantize" in " ".join(proc.stderr.split())
    assert "0 measured" not in proc.stderr  # refused when the plan builds it, before any job
    # a dry run builds no user code, so it cannot tell yet: it says the model is not built
    dry = harness(*args, "--dry-run", store=tmp_path / "store", env={"PYTHONPATH": str(tmp_path)})
    assert "not built" in dry.stdout


def test_a_variant_runs_is_stored_once_and_compares_with_its_parent(tmp_path):
    store = tmp_path / "store"
    args = ("run", "--model", "zoo:fmnist-cnn", "--model", "zoo:fmnist-cnn+int8", "--task", "fashion-mnist",
            "--metric", "accuracy", "--limit", "500", "--quiet")  # fmt: skip
    harness(*args, store=store)
    again = harness(*args[:-1], store=store)
    assert "2 from the store, 0 measured" in " ".join(again.stderr.split())
    compared = harness("compare", "zoo:fmnist-cnn", "zoo:fmnist-cnn+prune=0.9", "--exemplars", str(tmp_path / "e.csv"),
                       store=store, check=False)  # fmt: skip
    assert compared.returncode != 0  # never run: nothing to pair
    harness("run", "--model", "zoo:fmnist-cnn+prune=0.9", *args[3:], store=store)
    compared = harness("compare", "zoo:fmnist-cnn", "zoo:fmnist-cnn+prune=0.9", "--exemplars", str(tmp_path / "e.csv"),
                       store=store)  # fmt: skip
    assert "top1" in compared.stdout and "zoo:fmnist-cnn+prune=0.9" in compared.stdout
    # the exemplars, against the two clean passes read directly
    import pandas as pd

    from harness.store import Store

    with Store(store) as results:
        frames = {m: results.examples(models=[m], kind="clean") for m in ("zoo:fmnist-cnn", "zoo:fmnist-cnn+prune=0.9")}
    a, b = (frames[m].set_index("example")["correct"].astype(bool) for m in frames)
    written = pd.read_csv(tmp_path / "e.csv")
    assert len(written) == int((a != b).sum()) > 0
    assert set(written["example"]) == set(a.index[a != b])
    assert (written["direction"] == "A right, B wrong").sum() == int((a & ~b).sum())
    assert f"A right, B wrong: {int((a & ~b).sum()):,}" in " ".join(compared.stdout.split())


def test_temperature_is_the_nll_minimiser_on_the_validation_split_and_keeps_the_argmax(fmnist):
    """The fitted T equals an independent minimisation of the NLL (a grid over T in steps of 1e-4 around
    a coarse grid's best, in float64) on the same seeded 5,000 held-out validation examples (which the
    zoo did not train on); logits are the parent's divided by T; the lineage names the sample."""
    import numpy as np
    from torch.nn import functional as F

    task, x = fmnist
    parent, tempered = load_model("zoo:fmnist-cnn", task), load_model("zoo:fmnist-cnn+temperature", task)
    held_out = task.load("validation")  # shipped, and not in the zoo's training data
    rows = np.sort(np.random.default_rng(0).permutation(len(held_out))[:5000])
    logits, labels = parent.logits(held_out.inputs[rows]).double(), held_out.labels[rows]

    def nll(t: float) -> float:
        return float(F.cross_entropy(logits / t, labels))

    coarse = min(np.arange(0.05, 5, 0.01), key=nll)
    best = min(np.arange(coarse - 0.01, coarse + 0.01, 1e-4), key=nll)
    step = tempered.info["lineage"][0]
    assert abs(step["temperature"] - best) < 2e-4, (step["temperature"], best)
    fingerprint = held_out.subset(rows).fingerprint
    assert step["fitted_on"] == {"split": "validation", "examples": 5000, "fingerprint": fingerprint,
                                 "evaluated_split": False}  # fmt: skip
    ours, theirs = tempered.logits(x), parent.logits(x)
    assert torch.allclose(ours, theirs / step["temperature"], rtol=1e-5, atol=1e-5)
    assert torch.equal(ours.argmax(1), theirs.argmax(1))
    assert load_model("zoo:fmnist-cnn+temperature", task).fingerprint == tempered.fingerprint
    assert load_model("zoo:fmnist-cnn+temperature=test", task).info["lineage"][0]["fitted_on"]["evaluated_split"]
    on_train = load_model("zoo:fmnist-cnn+temperature=train-sample", task).info["lineage"][0]
    assert on_train["fitted_on"]["split"] == "train-sample" and on_train["temperature"] != step["temperature"]


def test_int8_static_quantizes_convolutions_and_keeps_the_accuracy(fmnist):
    """Static int8 through torch.ao's FX mode: the CNN's convolutions and Linear layers become quantized
    kernels, its state dict under a third of the bytes, top-1 the same as float32 on >= 98% of 512 test
    images and accuracy on the first 2,000 within 1 point (MLPerf keeps 99% of fp32's accuracy);
    deterministic; a module FX cannot trace is refused with the tracer's reason."""
    from torch.ao.nn.quantized import Conv2d as QuantizedConv2d

    from harness.models.base import IncompatibleError, Model
    from harness.registry import variants

    task, x = fmnist
    parent, static = load_model("zoo:fmnist-cnn", task), load_model("zoo:fmnist-cnn+int8-static", task)
    layers = list(static.module.modules())
    assert sum(isinstance(m, QuantizedConv2d) for m in layers) == 2  # fused with their ReLU
    assert not any(type(m) in (torch.nn.Conv2d, torch.nn.Linear) for m in layers)
    assert size_of(static.module) < size_of(parent.module) / 3
    assert size.parameters(static.module) == size.parameters(parent.module)
    assert size.weight_bytes(static.module) < size.weight_bytes(parent.module) / 3
    ours, theirs = static.logits(x), parent.logits(x)
    assert float((ours.argmax(1) == theirs.argmax(1)).float().mean()) >= 0.98
    test = task.load()
    accuracy = [float((m.logits(test.inputs[:2000]).argmax(1) == test.labels[:2000]).float().mean())
                for m in (parent, static)]  # fmt: skip
    assert accuracy[1] >= accuracy[0] - 0.01, accuracy
    assert torch.equal(load_model("zoo:fmnist-cnn+int8-static", task).logits(x), ours)
    tabular = load_model("zoo:adult-mlp+int8-static", get_task("adult"))
    assert tabular.info["lineage"][0]["quantized"] == "after its first layer (kept in float)"
    with pytest.raises(IncompatibleError, match=r"torch\.fx cannot trace the model"):
        variants.get("int8-static")().derive(Model("branching", Branching(parent.module), "image"), task,
                                             {"split": None, "examples": 64, "seed": 0})  # fmt: skip


class Branching(torch.nn.Module):
    """Control flow on the values of its input: what symbolic tracing cannot follow."""

    def __init__(self, body: torch.nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x):
        return self.body(x) if float(x.sum()) > 0 else -self.body(x)


def test_prune_channels_removes_channels_and_computes_the_parent_with_them_zeroed(fmnist):
    """Structured pruning (Torch-Pruning): each hidden layer keeps 70% of its channels (rounded), the
    logits' layer all of them; parameters and multiply-adds fall; and the smaller model's logits equal
    an independent construction: the parent with the removed channels' weights and biases set to zero
    (the kept channels found by their biases)."""
    import copy

    task, x = fmnist
    parent, pruned = load_model("zoo:fmnist-cnn", task), load_model("zoo:fmnist-cnn+prune-channels=0.3", task)
    layers = [m for m in parent.module if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    smaller = [m for m in pruned.module if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    zeroed = copy.deepcopy(parent.module)
    zeroed_layers = [m for m in zeroed if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    for big, small, target in zip(layers[:-1], smaller[:-1], zeroed_layers[:-1], strict=True):
        assert abs(small.bias.numel() - 0.7 * big.bias.numel()) < 1
        kept = [int((big.bias == b).nonzero()[0, 0]) for b in small.bias]
        dropped = sorted(set(range(big.bias.numel())) - set(kept))
        with torch.no_grad():
            target.weight[dropped] = 0
            target.bias[dropped] = 0
    assert smaller[-1].out_features == layers[-1].out_features == 10
    assert sum(p.numel() for p in pruned.module.parameters()) < 0.6 * sum(p.numel() for p in parent.module.parameters())
    with torch.inference_mode():
        assert torch.allclose(pruned.logits(x), zeroed(x), atol=1e-4)
    assert load_model("zoo:fmnist-cnn+prune-channels=0.3", task).fingerprint == pruned.fingerprint


def test_bn_adapt_mixes_each_examples_statistics_with_the_training_ones(fmnist):
    """Every BatchNorm of the zoo's ResNet normalises with (N * running + own) / (N + 1) statistics, N = 16:
    one layer's output equals that formula computed directly in float64 on the input it received; an
    image gets the same logits in a batch of 7 as in a batch of 256 (per example, so batch size and
    subsets do not change a figure); a very large N gives the parent back; a model without BatchNorm is
    refused."""
    import numpy as np

    from harness.models.base import IncompatibleError
    from harness.variants.modules import PriorBatchNorm

    task, x = fmnist
    parent, adapted = load_model("zoo:fmnist-resnet10t", task), load_model("zoo:fmnist-resnet10t+bn-adapt", task)
    layers = [m for m in adapted.module.modules() if isinstance(m, PriorBatchNorm)]
    assert layers and not any(type(m) is torch.nn.BatchNorm2d for m in adapted.module.modules() if m not in
                              [layer.bn for layer in layers])  # fmt: skip
    seen = {}
    layers[3].register_forward_hook(
        lambda m, args, out: seen.update(x=args[0].double().numpy(), y=out.double().numpy())
    )
    adapted.logits(x[:8])
    bn, given = layers[3].bn, seen["x"]
    own_mean, own_var = given.mean((2, 3), keepdims=True), given.var((2, 3), keepdims=True)
    w = 16 / 17
    mean = w * bn.running_mean.double().numpy()[None, :, None, None] + (1 - w) * own_mean
    var = w * bn.running_var.double().numpy()[None, :, None, None] + (1 - w) * own_var
    expected = (given - mean) / np.sqrt(var + bn.eps) * bn.weight.detach().double().numpy()[None, :, None, None] \
        + bn.bias.detach().double().numpy()[None, :, None, None]  # fmt: skip
    assert np.abs(seen["y"] - expected).max() < 1e-4
    alone, together = adapted.logits(x[:7]), adapted.logits(x[:256])[:7]
    assert torch.allclose(alone, together, atol=1e-4)
    assert not torch.allclose(alone, parent.logits(x[:7]), atol=1e-2)  # it does adapt
    barely = load_model("zoo:fmnist-resnet10t+bn-adapt=1e9", task)
    assert torch.allclose(barely.logits(x[:64]), parent.logits(x[:64]), atol=1e-3)
    with pytest.raises(IncompatibleError, match="no BatchNorm layer to adapt"):
        load_model("zoo:fmnist-cnn+bn-adapt", task)


def test_a_variants_card_says_what_it_changes_from_paired_figures(tmp_path):
    """The card of zoo:adult-mlp+prune=0.9 has a section "What this variant changes": its accuracy change
    and its exemplar counts equal those computed directly from the two stored clean passes."""

    from harness.store import Store

    store = tmp_path / "store"
    harness("run", "--model", "zoo:adult-mlp", "--model", "zoo:adult-mlp+prune=0.9", "--task", "adult", "--metric",
            "accuracy", "--quiet", store=store)  # fmt: skip
    harness("card", "zoo:adult-mlp+prune=0.9", "-o", str(tmp_path / "card.md"), store=store)
    card = (tmp_path / "card.md").read_text()
    section = card[card.index("## What this variant changes") : card.index("## Ethical Considerations")]
    with Store(store) as results:
        a, b = (results.examples(models=[m], kind="clean").set_index("example")["correct"].astype(bool)
                for m in ("zoo:adult-mlp", "zoo:adult-mlp+prune=0.9"))  # fmt: skip
    b = b.reindex(a.index)
    change = 100 * (b.mean() - a.mean())
    assert f"Accuracy changes by {change:+.1f} points" in section
    assert f"{int((a & ~b).sum()):,} that the parent classifies correctly the variant gets wrong" in section
    assert f"and {int((b & ~a).sum()):,} the reverse" in section
    assert "gap between sex groups" in section


def test_a_change_that_rounds_to_nothing_reads_zero_not_minus_zero():
    from harness.cards.changes import _points

    assert [_points(v) for v in (-0.0004, 0.0004, 0.0, -0.012, 0.023)] == ["0.0", "0.0", "0.0", "-1.2", "+2.3"]
