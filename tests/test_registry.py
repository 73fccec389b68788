"""The generic registry: decorator, did-you-mean, duplicates, lazy entry-point plugins."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from harness import registry
from harness.registry import Registry, RegistryError


def test_register_get_and_describe():
    reg: Registry = Registry("widget")

    @reg.register("round-widget", "a round one")
    class Round:
        pass

    @reg.register("square-widget")
    class Square:
        """Four sides.

        More text."""

    assert reg.get("round-widget") is Round
    assert reg.entry("square-widget").description == "Four sides."
    assert reg.names() == ["round-widget", "square-widget"]
    assert "round-widget" in reg


def test_unknown_name_suggests_close_ones():
    reg: Registry = Registry("widget")
    reg.register("round-widget")(object)
    with pytest.raises(RegistryError, match=r"unknown widget 'round-widgt'\. Did you mean 'round-widget'\?"):
        reg.get("round-widgt")
    with pytest.raises(RegistryError, match="Known widgets: round-widget") as info:
        reg.get("zzz")
    assert "Did you mean" not in str(info.value)


def test_duplicate_registration_is_an_error():
    reg: Registry = Registry("widget")
    reg.register("a")(int)
    with pytest.raises(RegistryError, match="registered twice"):
        reg.register("a")(str)


def test_plugins_are_found_by_name_and_loaded_lazily(monkeypatch):
    reg: Registry = Registry("widget", group="harness.widgets")
    ep = EntryPoint(name="json-widget", value="json:JSONDecoder", group="harness.widgets")
    loaded = []
    original_load = EntryPoint.load

    def spy(self):
        loaded.append(self.name)
        return original_load(self)

    monkeypatch.setattr(EntryPoint, "load", spy)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep] if group == "harness.widgets" else [])
    assert reg.names() == ["json-widget"]
    assert loaded == []  # listing names does not import the plugin
    import json

    assert reg.get("json-widget") is json.JSONDecoder
    assert loaded == ["json-widget"]


def test_builtin_registries_hold_the_builtins():
    assert {"fashion-mnist", "adult", "german-credit"} <= set(registry.tasks.names())
    assert {"accuracy", "calibration"} <= set(registry.metrics.names())
    assert {"zoo", "timm"} <= set(registry.models.names())
