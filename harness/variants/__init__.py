"""Model variants: the same model, transformed (quantized, pruned, cast), named after it with ``+``.

``zoo:fmnist-cnn+int8`` is ``zoo:fmnist-cnn`` quantized; ``timm:resnet18+prune=0.5+int8`` pruned, then
quantized. Each transform is registered in ``harness.registry.variants`` (plugins: the entry-point
group ``harness.variants``) and is deterministic given its parameters, so a variant's fingerprint
derives from its parent's and the transform's name, version and parameters, and its ``lineage``
records every step. This module stays free of torch: naming a variant is cheap.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from harness.registry import RegistryError, variants

if TYPE_CHECKING:
    from harness.models.base import Model
    from harness.tasks.base import Task
    from harness.variants.base import Variant


def split_name(name: str) -> tuple[str, list[tuple[str, str | None]]]:
    """``"zoo:fmnist-cnn+prune=0.5+int8"`` -> ``("zoo:fmnist-cnn", [("prune", "0.5"), ("int8", None)])``."""
    base, *steps = name.split("+")
    chain = []
    for step in steps:
        label, _, value = step.partition("=")
        if not label:
            raise RegistryError(f"model {name!r}: an empty variant after '+' (e.g. {base}+int8)")
        chain.append((label, value if "=" in step else None))
    return base, chain


def steps(name: str) -> list[tuple[Variant, dict[str, Any]]]:
    """Each variant of ``name`` with its parsed parameters; unknown names and bad values fail here."""
    out = []
    for label, value in split_name(name)[1]:
        variant = variants.get(label)()
        out.append((variant, variant.parse(value, name)))
    return out


def canonical(name: str) -> str:
    """The variant chain written one way (``prune=0.50`` -> ``prune=0.5``), after the parent's name."""
    return "".join(f"+{variant.label(params)}" for variant, params in steps(name))


def lineage_step(variant: Variant, params: dict[str, Any]) -> dict[str, Any]:
    return {"variant": variant.name, "version": variant.version, "params": params}


def derived_fingerprint(parent: str, step: dict[str, Any]) -> str:
    """A variant's fingerprint: its parent's and the transform that made it."""
    return hashlib.sha256(f"{parent}/{json.dumps(step, sort_keys=True)}".encode()).hexdigest()[:16]


def apply(model: Model, name: str, task: Task) -> Model:
    """``model`` transformed by each variant ``name`` names, in order; a variant that cannot apply
    raises ``IncompatibleError`` naming why."""
    for variant, params in steps(name):
        model = variant.derive(model, task, params)
    return model


def catalog() -> list[tuple[str, str]]:
    return [(entry.obj.pattern or entry.name, entry.description) for entry in variants.entries()]
