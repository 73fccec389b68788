"""One generic registry for models, tasks, metrics, attacks and explainers (attribution methods).

Built-in entries register with a decorator when their module is imported; the modules to import are
named per registry (``builtins``) so that a lookup finds them without the caller importing anything.
Those modules keep heavy imports (torch, timm) inside functions, so listing what is registered stays
fast. Third-party packages add entries through entry points (``harness.models``, ``harness.tasks``,
``harness.metrics``, ``harness.attacks``, ``harness.explainers``): an entry point's name is the
registered name and it is loaded only when that name is asked for.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from harness.errors import HarnessError

T = TypeVar("T")


class RegistryError(HarnessError, LookupError):
    """An unknown or duplicate name. The message is meant for the user as it is."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    description: str


class Registry(Generic[T]):
    def __init__(self, kind: str, builtins: tuple[str, ...] = (), group: str | None = None) -> None:
        self.kind = kind
        self._builtins = builtins
        self._group = group or f"harness.{kind}s"
        self._entries: dict[str, Entry[T]] = {}
        self._loaded_builtins = False

    def register(self, name: str, description: str = "") -> Callable[[T], T]:
        """Decorator: ``@metrics.register("accuracy", "top-1, top-5, ...")``."""

        def add(obj: T) -> T:
            if name in self._entries and self._entries[name].obj is not obj:
                raise RegistryError(f"{self.kind} {name!r} is registered twice")
            doc = description or (getattr(obj, "__doc__", None) or "").strip().split("\n")[0]
            self._entries[name] = Entry(name, obj, doc)
            return obj

        return add

    def _load_builtins(self) -> None:
        if not self._loaded_builtins:
            self._loaded_builtins = True
            for module in self._builtins:
                importlib.import_module(module)

    def _plugins(self) -> dict[str, EntryPoint]:
        return {ep.name: ep for ep in entry_points(group=self._group)}

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry[T]:
        self._load_builtins()
        if name not in self._entries:
            plugin = self._plugins().get(name)
            if plugin is not None:
                obj = plugin.load()
                # Loading a module-valued plugin may register the name itself through the decorator.
                if name not in self._entries:
                    self.register(name)(obj)
        if name not in self._entries:
            raise RegistryError(unknown_name_message(self.kind, name, self.names()))
        return self._entries[name]

    def names(self) -> list[str]:
        self._load_builtins()
        return sorted(set(self._entries) | set(self._plugins()))

    def entries(self) -> Iterator[Entry[T]]:
        """Every entry, plugins included (loading them to read their descriptions)."""
        for name in self.names():
            yield self.entry(name)

    def __contains__(self, name: str) -> bool:
        return name in self.names()


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    listing = ", ".join(known) if len(known) <= 30 else ", ".join(known[:30]) + ", ..."
    return f"unknown {kind} {name!r}.{hint} Known {kind}s: {listing}."


models: Registry = Registry(
    "model source",
    ("harness.models.zoo", "harness.models.timm_source", "harness.models.hf_source", "harness.models.torch_source"),
    "harness.models",
)
tasks: Registry = Registry(
    "task",
    (
        "harness.tasks.fashion_mnist",
        "harness.tasks.adult",
        "harness.tasks.german_credit",
        "harness.tasks.benchmarks",
        "harness.tasks.images",
        "harness.tasks.csv_file",
        "harness.tasks.hf",
        "harness.tasks.ood_sets",
    ),
    "harness.tasks",
)
metrics: Registry = Registry(
    "metric",
    (
        "harness.metrics.accuracy",
        "harness.metrics.calibration",
        "harness.metrics.adversarial",
        "harness.metrics.tabular_shift",
        "harness.metrics.corruption",
        "harness.metrics.fairness",
        "harness.metrics.efficiency",
        "harness.metrics.interpretability",
        "harness.metrics.ood",
        "harness.metrics.selective",
        "harness.metrics.membership",
    ),
    "harness.metrics",
)
attacks: Registry = Registry("attack", ("harness.attacks.adversarial",), "harness.attacks")
variants: Registry = Registry(
    "variant",
    ("harness.variants.quantize", "harness.variants.prune", "harness.variants.calibrate", "harness.variants.adapt"),
    "harness.variants",
)
explainers: Registry = Registry("explainer", ("harness.explain.methods",), "harness.explainers")
privacy_attacks: Registry = Registry("privacy attack", ("harness.privacy.attacks",), "harness.privacy_attacks")
detectors: Registry = Registry(
    "detector",
    ("harness.detectors.posthoc", "harness.detectors.features", "harness.detectors.odin"),
    "harness.detectors",
)
