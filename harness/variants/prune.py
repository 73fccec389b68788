"""``prune=<fraction>``: global unstructured L1 magnitude pruning of every convolution and Linear
weight (``torch.nn.utils.prune.global_unstructured``), made permanent. The pruned weights are zeros in
dense tensors: the model's size and latency do not change, only what it computes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.registry import RegistryError, variants
from harness.variants.base import Variant

if TYPE_CHECKING:
    from torch import nn

    from harness.models.base import Model
    from harness.tasks.base import Task


def prunable(module: nn.Module) -> list[tuple[nn.Module, str]]:
    from torch import nn

    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    return [(m, "weight") for m in module.modules() if isinstance(m, kinds) and m.weight is not None]


@variants.register("prune", "global L1 magnitude pruning of conv and Linear weights (that fraction set to zero)")
class Prune(Variant):
    name = "prune"
    pattern = "prune=<fraction>"

    def parse(self, value: str | None, where: str) -> dict[str, Any]:
        try:
            fraction = float(value) if value is not None else None
        except ValueError:
            fraction = None
        if fraction is None or not 0 < fraction < 1:
            raise RegistryError(f"model {where!r}: prune takes the fraction of weights set to zero, "
                                f"between 0 and 1 exclusive (e.g. +prune=0.5); got {value!r}")  # fmt: skip
        return {"fraction": fraction}

    def label(self, params: dict[str, Any]) -> str:
        return f"prune={params['fraction']:g}"

    def check(self, module: nn.Module, model: Model, task: Task) -> None:
        from harness.models.base import IncompatibleError

        if not prunable(module):
            raise IncompatibleError(f"{model.name}+prune: the model has no convolution or Linear weight to prune")

    def transform(self, module: nn.Module, task: Task, **params: Any) -> nn.Module:
        from torch.nn.utils import prune

        targets = prunable(module)
        prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=params["fraction"])
        for layer, name in targets:
            prune.remove(layer, name)
        return module


def output_layers(module: nn.Module, classes: int) -> list[nn.Module]:
    """The layers whose outputs are the logits: their channels are the classes and must stay."""
    last = [m for m, _ in prunable(module)][-1:]
    return [m for m in last if getattr(m, "out_features", getattr(m, "out_channels", None)) == classes]


@variants.register("prune-channels", "structured L1 pruning: that fraction of each layer's channels removed "
                   "(Torch-Pruning), so size and latency change")  # fmt: skip
class PruneChannels(Prune):
    """Channels and neurons removed, not zeroed: Torch-Pruning traces the dependency graph (a pruned
    convolution's outputs are the next layer's inputs, through a flatten or a batch norm) and removes
    the same fraction of every layer's output channels by their group L1 magnitude, the logits' layer
    excepted. The model is smaller and faster for real; what it computes equals the parent with those
    channels' weights set to zero."""

    name = "prune-channels"
    pattern = "prune-channels=<fraction>"

    def label(self, params: dict[str, Any]) -> str:
        return f"prune-channels={params['fraction']:g}"

    def transform(self, module: nn.Module, task: Task, **params: Any) -> nn.Module:
        import numpy as np
        import torch_pruning as tp

        from harness.models.base import IncompatibleError

        example = task.load().take(np.arange(1))
        try:
            pruner = tp.pruner.MagnitudePruner(
                module.eval(), example, importance=tp.importance.MagnitudeImportance(p=1),
                pruning_ratio=params["fraction"], ignored_layers=output_layers(module, task.num_classes),
            )  # fmt: skip
            pruner.step()
        except Exception as exc:  # what the graph tracer meets in a model it cannot follow
            raise IncompatibleError(f"+prune-channels: Torch-Pruning cannot trace the model ({exc})") from exc
        return module
