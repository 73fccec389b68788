"""Models: sources that build a ``Model`` from a name such as ``zoo:fmnist-cnn`` or ``timm:resnet18``.

A source is registered in ``harness.registry.models`` under its prefix. This module stays free of
torch so that naming and listing models is cheap; the sources import torch when they build.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness.models import fingerprints
from harness.registry import models
from harness.variants import apply, canonical, lineage_step, split_name, steps

if TYPE_CHECKING:
    from harness.models.base import Model
    from harness.tasks.base import Task


class ModelSource(Protocol):
    def catalog(self) -> list[tuple[str, str]]:
        """(name, one-line description) of each model this source can name, if it has a list."""

    def check(self, arg: str, task: Task, **options: Any) -> None:
        """Raise ``RegistryError`` for an unknown name, ``IncompatibleError`` if it cannot run on task."""

    def load(self, arg: str, task: Task, checkpoint: str | None = None, **options: Any) -> Model: ...

    # Optional: ``fingerprint(arg, task, checkpoint, **options) -> str``, the loaded model's fingerprint
    # without building it; ``determined_by(arg, checkpoint, **options) -> list[Path] | None``, the files
    # that with the name and options determine the built model (None: it is drawn at random, or
    # fetched), so that its fingerprint can be remembered (``harness.models.fingerprints``).


def fingerprint_model(name: str, task: Task, checkpoint: str | None = None, **options: Any) -> str | None:
    """The fingerprint the loaded model will have, if it is known without loading it: from its source
    (the zoo reads its weights file), or remembered from an earlier build of the same files, name,
    options and library versions; None otherwise, and planning builds it. A variant (``+int8``) not
    built before is built at planning, so that one that cannot apply is refused there with the reason."""
    chain = split_name(name)[1]
    found = getattr(source(name), "fingerprint", None)
    if found and not chain:
        return found(parse(name)[1], task, checkpoint=checkpoint, **options)
    files = _determined_by(name, checkpoint, options)
    return None if files is None else fingerprints.remembered(*_memory_key(name, options, task), files)


def remember_fingerprint(name: str, task: Task, fingerprint: str, checkpoint: str | None = None,
                         **options: Any) -> None:  # fmt: skip
    """Remember a built model's fingerprint, when its files determine it."""
    files = _determined_by(name, checkpoint, options)
    if files is not None:
        fingerprints.remember(*_memory_key(name, options, task), files, fingerprint)


def _determined_by(name: str, checkpoint: str | None, options: dict[str, Any]) -> list[Path] | None:
    if any(variant.data_dependent for variant, _ in steps(name)):  # fitted on data: its fingerprint too
        return None
    found = getattr(source(name), "determined_by", None)
    return found(parse(name)[1], checkpoint, **options) if found else None


def _memory_key(name: str, options: dict[str, Any], task: Task) -> tuple[str, dict[str, Any], str]:
    lineage = [lineage_step(variant, params) for variant, params in steps(name)]
    return split_name(name)[0], {"options": options, "lineage": lineage}, task.fingerprint


def canonical_name(name: str) -> str:
    """The one name of a model however it was typed: a source whose argument is a path makes it absolute
    (``hf:./vit``, ``hf:vit`` and ``hf:/abs/vit`` are one model, measured once, one row on a board);
    variants are written one way (``+prune=0.50`` -> ``+prune=0.5``)."""
    base, chain = split_name(name)
    prefix, arg = parse(base)
    found = getattr(source(base), "canonical", None)
    return (f"{prefix}:{found(arg)}" if found else base) + (canonical(name) if chain else "")


def absolute_if_path(arg: str) -> str:
    """``arg`` as an absolute path when it names an existing file or folder, else unchanged."""
    from pathlib import Path

    path = Path(arg).expanduser()
    return str(path.resolve()) if path.exists() else arg


def parse(name: str) -> tuple[str, str]:
    """``"zoo:fmnist-cnn"`` -> ``("zoo", "fmnist-cnn")``; a name without a prefix is its own source;
    variants after ``+`` are not part of either."""
    source, _, arg = split_name(name)[0].partition(":")
    return source, arg


def source(name: str) -> ModelSource:
    return models.get(parse(name)[0])()


def check_model(name: str, task: Task, **options: Any) -> None:
    """Raise ``IncompatibleError`` when the model cannot run on ``task`` (cheap: nothing is built);
    unknown variants and bad variant values raise ``RegistryError``."""
    source(name).check(parse(name)[1], task, **options)
    steps(name)


def load_model(name: str, task: Task, checkpoint: str | None = None, **options: Any) -> Model:
    """The model ``name`` names, built by its source, then transformed by its variants (``+int8``)."""
    model = source(name).load(parse(name)[1], task, checkpoint=checkpoint, **options)
    model.name = split_name(name)[0]
    model = apply(model, name, task)
    model.name = name
    return model


def catalog() -> list[tuple[str, str]]:
    """Every nameable model: the zoo's entries and each source's pattern."""
    rows = []
    for entry in models.entries():
        rows += entry.obj().catalog() or [(f"{entry.name}:<name>", entry.description)]
    return rows
