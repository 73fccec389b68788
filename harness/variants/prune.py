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
