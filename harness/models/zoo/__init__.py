"""The reference zoo: small real models trained on the shipped tasks, weights shipped as safetensors.

The catalog (``catalog.json``) is data: each entry names its task, architecture and training recipe;
``harness zoo train`` runs the recipe and writes the weights with the measured results in their metadata.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.registry import RegistryError, models, unknown_name_message

if TYPE_CHECKING:
    from torch import nn

    from harness.models.base import Model
    from harness.tasks.base import Task

LICENSE = "Apache-2.0"
# What the zoo is for, for its model cards: reference models that exercise every evaluation, not products.
USE = {
    "intended_use": "a reference model for running, testing and learning the harness's evaluations on its "
    "shipped data set, and a baseline to compare other models with",
    "intended_users": "developers and reviewers of evaluation tooling; students of model evaluation",
}
OUT_OF_SCOPE = {
    "fashion-mnist": "any real product or image classification: it has seen only 28x28 grey Zalando catalogue images",
    "adult": "any decision about a real person (hiring, pay, credit, insurance): it learned from the 1994 US census",
    "german-credit": "any credit decision: it learned from 700 applicants of a 1970s German bank",
}


@cache
def catalog() -> dict[str, dict[str, Any]]:
    return json.loads((resources.files(__name__) / "catalog.json").read_text())


def weights_dir() -> Path:
    return Path(str(resources.files(__name__) / "weights"))


def entry(name: str) -> dict[str, Any]:
    if name not in catalog():
        raise RegistryError(unknown_name_message("zoo model", name, sorted(catalog())))
    return catalog()[name]


def build_module(name: str, task: Task) -> nn.Module:
    """The untrained network of a zoo entry for ``task`` (tabular ones with an unfitted preprocessor)."""
    from harness.models.architectures import ARCHITECTURES
    from harness.models.tabular import TabularPreprocessor

    arch = dict(entry(name)["architecture"])
    factory = ARCHITECTURES[arch.pop("name")]
    arch = {k: tuple(v) if isinstance(v, list) else v for k, v in arch.items()}
    if task.modality == "tabular":
        return factory(task.num_classes, preprocessor=TabularPreprocessor(task.schema), **arch)
    return factory(task.num_classes, input_shape=task.input_shape, **arch)


@models.register("zoo", "the reference zoo shipped with harness")
class ZooSource:
    def catalog(self) -> list[tuple[str, str]]:
        return [(f"zoo:{name}", f"[{e['task']}] {e['description']}") for name, e in sorted(catalog().items())]

    def check(self, arg: str, task: Task, **options: Any) -> None:
        from harness.models.base import IncompatibleError

        trained_for = entry(arg)["task"]
        if trained_for != task.name:
            raise IncompatibleError(f"zoo:{arg} is trained for task {trained_for!r}, not {task.name!r}")

    def fingerprint(self, arg: str, task: Task, checkpoint: str | None = None, **options: Any) -> str:
        """The loaded model's fingerprint, from the weights file alone (no network is built)."""
        from harness.models.base import fingerprint_state
        from harness.models.files import read_safetensors

        self.check(arg, task)
        state, _ = read_safetensors(self._path(arg, checkpoint), f"zoo:{arg}")
        # loading copies each tensor into the float32 network (a float64 or float16 checkpoint is converted)
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        return fingerprint_state(state, self._config(arg))

    def determined_by(self, arg: str, checkpoint: str | None = None, **options: Any) -> list[Path]:
        return [self._path(arg, checkpoint)]

    @staticmethod
    def _path(arg: str, checkpoint: str | None) -> Path:
        return Path(checkpoint) if checkpoint else weights_dir() / f"{arg}.safetensors"

    @staticmethod
    def _config(arg: str) -> dict[str, Any]:
        return {"source": "zoo", "name": arg, "architecture": entry(arg)["architecture"]}

    def load(self, arg: str, task: Task, checkpoint: str | None = None, **options: Any) -> Model:
        from harness.models.base import Model
        from harness.models.files import load_safetensors

        self.check(arg, task)
        if options:
            raise ValueError(f"zoo:{arg} takes no options, got {sorted(options)}")
        module = build_module(arg, task)
        metadata = load_safetensors(module, self._path(arg, checkpoint), f"zoo:{arg}")
        e = entry(arg)
        info = {
            "source": "harness reference zoo",
            "description": e["description"],
            "task": e["task"],
            "architecture": e["architecture"],
            "recipe": e["recipe"],
            "seed": e["recipe"]["seed"],
            "license": LICENSE,
            **USE,
            "out_of_scope": OUT_OF_SCOPE.get(e["task"], "any use beyond evaluating the harness"),
            **json.loads(metadata.get("training", "{}")),
            **e.get("measured", {}),  # figures measured after training, with the command that measured them
        }
        return Model(f"zoo:{arg}", module, task.modality, config=self._config(arg), info=info)
