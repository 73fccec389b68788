"""``bn-adapt[=<N>]``: test-time adaptation of BatchNorm statistics (Schneider et al., "Improving
robustness against common corruptions by covariate shift adaptation", NeurIPS 2020).

Each BatchNorm layer normalises an example with its training statistics mixed with the example's own
(per channel, over the positions), weighted N to 1; N = 16 by default, the prior strength the paper
recommends for small target batches. The adaptation is per example, on the example as evaluated:
under the corruption metric, on each corrupted image at each corruption and severity. Adapting on the
whole evaluated batch, as the paper's large-batch setting does, would make a figure depend on how the
run happened to batch the examples (its batch size, a ``--limit`` subset), which its job spec could not
name; one example at a time, the same image gives the same logits in any batch, any run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.registry import RegistryError, variants
from harness.variants.base import Variant

if TYPE_CHECKING:
    from torch import nn

    from harness.models.base import Model
    from harness.tasks.base import Task

PRIOR = 16.0


def batch_norms(module: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """(parent, attribute, layer) of every BatchNorm layer with running statistics."""
    from torch import nn

    return [(parent, name, child) for parent in module.modules() for name, child in parent.named_children()
            if isinstance(child, nn.modules.batchnorm._BatchNorm) and child.running_mean is not None]  # fmt: skip


@variants.register("bn-adapt", "BatchNorm statistics adapted to each evaluated example, prior N=16 "
                   "(Schneider et al. 2020)")  # fmt: skip
class BatchNormAdapt(Variant):
    name = "bn-adapt"
    pattern = "bn-adapt[=<N>]"

    def parse(self, value: str | None, where: str) -> dict[str, Any]:
        try:
            prior = PRIOR if value is None else float(value)
        except ValueError:
            prior = -1.0
        if prior < 0:
            raise RegistryError(f"model {where!r}: bn-adapt takes the prior strength N >= 0 (the weight of "
                                "the training statistics against one example's, e.g. +bn-adapt=16); "
                                f"got {value!r}")  # fmt: skip
        return {"prior": prior}

    def label(self, params: dict[str, Any]) -> str:
        return self.name if params["prior"] == PRIOR else f"bn-adapt={params['prior']:g}"

    def check(self, module: nn.Module, model: Model, task: Task) -> None:
        from harness.models.base import IncompatibleError

        if not batch_norms(module):
            raise IncompatibleError(f"{model.name}+bn-adapt: the model has no BatchNorm layer to adapt")

    def transform(self, module: nn.Module, task: Task, **params: Any) -> nn.Module:
        from harness.variants.modules import PriorBatchNorm

        for parent, name, layer in batch_norms(module):
            setattr(parent, name, PriorBatchNorm(layer, params["prior"]))
        return module
