"""Variants fitted on data: a seeded sample of a split other than the evaluated one (by default the
variant's ``default_split`` of the task: held-out validation data for what is fitted after training,
training data for what calibrates on the data the model was fitted to), or of the evaluated split
when named explicitly (``+temperature=test``), which the variant's info then flags: figures measured
on the data a variant was fitted on are optimistic. The sample's fingerprint joins the variant's
lineage, so new data is a new model."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from harness.registry import RegistryError
from harness.variants.base import Variant

if TYPE_CHECKING:
    import torch
    from torch import nn

    from harness.models.base import Model
    from harness.tasks.base import Split, Task

SEED = 0


class FittedOnSplit(Variant):
    """Written ``+<name>`` (fitted on the training split) or ``+<name>=<split>``."""

    data_dependent = True
    examples: ClassVar[int]  # the size of the seeded sample it is fitted on

    @staticmethod
    def default_split(task: Task) -> str | None:
        """The split fitted on unless another is named: the training split's (shipped sample)."""
        return task.training_split

    def parse(self, value: str | None, where: str) -> dict[str, Any]:
        if value is not None and not value.strip():
            raise RegistryError(f"model {where!r}: {self.name}= needs the split to fit on (e.g. +{self.name}=train)")
        return {"split": value, "examples": self.examples, "seed": SEED}

    def label(self, params: dict[str, Any]) -> str:
        return self.name if params["split"] is None else f"{self.name}={params['split']}"

    def split_name(self, task: Task, params: dict[str, Any], model: Model) -> str:
        from harness.models.base import IncompatibleError

        if params["split"] is not None:
            if params["split"] not in task.splits:
                raise IncompatibleError(f"{model.name}+{self.label(params)}: task {task.name!r} has no split "
                                        f"{params['split']!r}; its splits are {list(task.splits)}")  # fmt: skip
            return params["split"]
        split = self.default_split(task)
        if split is None:
            raise IncompatibleError(
                f"{model.name}+{self.name}: task {task.name!r} has no split besides the evaluated one "
                f"({task.eval_split!r}) to fit on; write +{self.name}={task.eval_split} to fit on it, knowing that "
                "its figures are then optimistic"
            )
        return split

    @staticmethod
    def sample(task: Task, split_name: str, params: dict[str, Any], model: Model) -> Split:
        """The seeded sample the variant is fitted on, decoded as the model decodes its inputs."""
        split = task.load(split_name)
        if model.decoding is not None:
            split = split.redecoded(model.decoding) or split
        n = min(params["examples"], len(split))
        return split.subset(np.sort(np.random.default_rng(params["seed"]).permutation(len(split))[:n]))

    def fit(self, module: nn.Module, sample: Split, **params: Any) -> tuple[nn.Module, dict[str, Any]]:
        """``module`` fitted on ``sample``, and what the fit found (a temperature, say)."""
        raise NotImplementedError

    def apply_to(self, parent: Model, task: Task, params: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
        split = self.split_name(task, params, parent)
        sample = self.sample(task, split, params, parent)
        module, found = self.fit(copy.deepcopy(parent.module).cpu(), sample, **params)
        fitted_on = {"split": split, "examples": len(sample), "fingerprint": sample.fingerprint,
                     "evaluated_split": split == task.eval_split}  # fmt: skip
        return module, {"fitted_on": fitted_on, **found}


def logits_of(module: nn.Module, split: Split, batch_size: int = 256) -> torch.Tensor:
    """``module``'s logits on every example of ``split``, on the CPU."""
    import torch

    module.eval()
    with torch.inference_mode():
        return torch.cat([module(x).float() for x, _ in split.batches(batch_size)])
