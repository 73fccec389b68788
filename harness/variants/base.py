"""The ``Variant`` base: parse a parameter, refuse a model it cannot apply to, transform a copy."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, ClassVar

from harness.registry import RegistryError

if TYPE_CHECKING:
    from torch import nn

    from harness.models.base import Model
    from harness.tasks.base import Task


class Variant:
    """A deterministic transform of a model. Subclasses set ``name``, ``version`` (bump it when the
    transform's output changes), ``pattern`` (how it is written) and implement ``transform``."""

    name: ClassVar[str]
    version: ClassVar[int] = 1
    pattern: ClassVar[str | None] = None  # e.g. "prune=<fraction>"; None: the bare name
    data_dependent: ClassVar[bool] = False  # fitted on data (``fitted.py``): never built from memory
    differentiable: ClassVar[bool] = True  # False: no gradients (int8 kernels); attacks follow the parent's

    def parse(self, value: str | None, where: str) -> dict[str, Any]:
        """The parameters written after ``=`` (None when there is no ``=``)."""
        if value is not None:
            raise RegistryError(f"model {where!r}: variant {self.name} takes no value (write +{self.name})")
        return {}

    def label(self, params: dict[str, Any]) -> str:
        return self.name

    def check(self, module: nn.Module, model: Model, task: Task) -> None:
        """Raise ``IncompatibleError`` saying why when the variant cannot apply to this model."""

    def transform(self, module: nn.Module, task: Task, **params: Any) -> nn.Module:
        """The transformed module (``module`` is the variant's own copy of its parent's)."""
        raise NotImplementedError

    def apply_to(self, parent: Model, task: Task, params: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
        """The transformed copy of the parent's module, and what the transform was fitted on and found
        (nothing, for a transform of the weights alone), which joins the lineage step."""
        return self.transform(copy.deepcopy(parent.module).cpu(), task, **params), {}

    def derive(self, parent: Model, task: Task, params: dict[str, Any]) -> Model:
        """The variant of ``parent``: a transformed copy, its fingerprint derived from the parent's and
        this step, its lineage and info extended."""
        from harness.models.base import Model
        from harness.variants import lineage_step

        self.check(parent.module, parent, task)
        module, fitted = self.apply_to(parent, task, params)
        step = {**lineage_step(self, params), **fitted}
        # the parent's parameter count stays: quantized and pruned weights are still its weights
        info = {**parent.info, "variant_of": parent.info.get("variant_of", parent.name),
                "lineage": [*parent.lineage, step]}  # fmt: skip
        surrogate = parent.surrogate if parent.surrogate is not None or self.differentiable else parent.module
        return Model(
            f"{parent.name}+{self.label(params)}", module, parent.modality, config=parent.config, info=info,
            decoding=parent.decoding, parent=parent.fingerprint, lineage=(*parent.lineage, step), surrogate=surrogate,
        )  # fmt: skip
