"""Structured slices: which part of an evaluation a record describes, as ordered key=value pairs
(``attack=pgd-linf@0.1``, ``feature=sex,criterion=demographic_parity``, ``method=saliency,feature=age,
group=Female``); no pairs is ``overall``.

The store keeps a slice as its canonical text, in which a ``,``, ``=`` or ``\\`` inside a value is
backslash-escaped (a group called ``Married, spouse present`` stays one value); every view reads the
pairs through ``parse`` instead of cutting the text itself.
"""

from __future__ import annotations

from collections.abc import Mapping

OVERALL = "overall"
SPECIAL = "\\,"


def escape(value: object) -> str:
    return "".join("\\" + c if c in SPECIAL else c for c in str(value))


def format(parts: Mapping[str, object] | None = None, /, **more: object) -> str:
    """The canonical text of the pairs, in the order given: ``format(attack="fgsm")`` -> ``attack=fgsm``."""
    items = {**(parts or {}), **more}
    if not items:
        return OVERALL
    return ",".join(f"{escape(key)}={escape(value)}" for key, value in items.items())


def parse(text: str) -> dict[str, str]:
    """The pairs of a slice's text, in order (``overall``: none)."""
    if text == OVERALL or not text:
        return {}
    pairs: dict[str, str] = {}
    key, current, escaped = None, [], False
    for char in text + ",":
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "=" and key is None:
            key, current = "".join(current), []
        elif char == ",":
            if key is None:
                raise ValueError(f"slice {text!r}: {''.join(current)!r} is not a key=value pair")
            pairs[key] = "".join(current)
            key, current = None, []
        else:
            current.append(char)
    return pairs
