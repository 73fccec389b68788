"""Text perturbations: the noise real text carries, at stated rates, seeded per example.

Each perturbation edits a string at a rate per character (or per word boundary) that its severity
sets (``RATES``); the random draws of an example come from ``(seed, perturbation, severity, example
index)``, as HELM's perturbations are seeded per instance, so an example is perturbed the same way in
every run and in every subset that holds it.

- ``typo``: at each letter, with probability ``rate``, one of: swap with the next letter, delete it,
  repeat it, or replace it with a neighbour on a QWERTY keyboard.
- ``case``: each letter's case flipped with probability ``rate``.
- ``whitespace``: each space removed, and a space inserted after each character, with probability ``rate``.
- ``punctuation``: each punctuation mark removed, and one of ``.,!?;:'"-`` inserted after a word, with
  probability ``rate``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import numpy as np

RATES = {1: 0.02, 2: 0.05, 3: 0.1, 4: 0.15, 5: 0.2}  # per character (or word), by severity
KEYBOARD = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
PUNCTUATION = ".,!?;:'\"-"


def _neighbours() -> dict[str, str]:
    out = {}
    for r, row in enumerate(KEYBOARD):
        for c, key in enumerate(row):
            near = [row[c + d] for d in (-1, 1) if 0 <= c + d < len(row)]
            near += [KEYBOARD[rr][c] for rr in (r - 1, r + 1) if 0 <= rr < 3 and c < len(KEYBOARD[rr])]
            out[key] = "".join(near)
    return out


NEIGHBOURS = _neighbours()


def typo(text: str, rate: float, rng: np.random.Generator) -> str:
    chars, out, i = list(text), [], 0
    while i < len(chars):
        ch = chars[i]
        if ch.isalpha() and rng.random() < rate:
            kind = rng.integers(4)
            if kind == 0 and i + 1 < len(chars):  # swap with the next character
                out += [chars[i + 1], ch]
                i += 2
                continue
            if kind == 1:  # delete
                i += 1
                continue
            if kind == 2:  # repeat
                out += [ch, ch]
            else:  # a keyboard neighbour, in the same case
                near = NEIGHBOURS.get(ch.lower(), "")
                sub = near[rng.integers(len(near))] if near else ch
                out.append(sub.upper() if ch.isupper() else sub)
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def case(text: str, rate: float, rng: np.random.Generator) -> str:
    flips = rng.random(len(text)) < rate
    return "".join(ch.swapcase() if flip else ch for ch, flip in zip(text, flips, strict=True))


def whitespace(text: str, rate: float, rng: np.random.Generator) -> str:
    out = []
    for ch in text:
        if ch == " " and rng.random() < rate:
            continue
        out.append(ch)
        if rng.random() < rate:
            out.append(" ")
    return "".join(out)


def punctuation(text: str, rate: float, rng: np.random.Generator) -> str:
    out = []
    for k, ch in enumerate(text):
        if ch in PUNCTUATION and rng.random() < rate:
            continue
        out.append(ch)
        if ch.isalnum() and (k + 1 == len(text) or text[k + 1] == " ") and rng.random() < rate:
            out.append(PUNCTUATION[rng.integers(len(PUNCTUATION))])
    return "".join(out)


TEXT_CORRUPTIONS: dict[str, Callable[[str, float, np.random.Generator], str]] = {
    "typo": typo,
    "case": case,
    "whitespace": whitespace,
    "punctuation": punctuation,
}


def perturb(texts: Sequence[str], indices: Sequence[int], name: str, severity: int, seed: int) -> list[str]:
    """Each text perturbed by ``name`` at ``severity``, seeded by its example index."""
    fn, rate, tag = TEXT_CORRUPTIONS[name], RATES[severity], zlib.crc32(name.encode())
    return [
        fn(text, rate, np.random.default_rng([seed, tag, severity, int(index)]))
        for text, index in zip(texts, indices, strict=True)
    ]
