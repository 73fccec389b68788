"""What each kind of record measures, declared once by its metric: direction, category, the slice keys
its records carry, where its per-example outcome is stored, whether ``compare`` shows it by default,
and how it is shown. Boards, ``compare``, cards and the terminal tables read these declarations
instead of parsing metric names and slice strings, and ``EvalContext.record`` takes direction and
category from them, so that they are said once.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

from harness.records import Direction


@dataclass(frozen=True)
class Measure:
    name: str  # the records' metric, e.g. "adversarial.robust_accuracy"
    direction: Direction
    category: str
    keys: tuple[str, ...] = ()  # the slice keys its records carry (besides overall)
    outcome: tuple[str, str] | None = None  # (kind, column template) of its per-example outcome: "robust_{attack}"
    fixed: Mapping[str, str] = field(default_factory=dict)  # slice parts the outcome's records always have
    key_slices: Mapping[str, str] | None = None  # the slices compare shows by default: a glob per key; {}: overall
    percent: bool = False  # a proportion shown in percent
    verdicts: Mapping[float, str] = field(default_factory=dict)  # a verdict's values and their words

    def _template(self) -> tuple[str, list[str], str]:
        """The column template without its patterns, the names in it, and the regex that reads it back:
        ``{corruption:.+@[0-9]}`` names ``corruption`` and matches what that pattern matches."""
        assert self.outcome is not None
        fields = re.findall(r"{(\w+)(?::([^}]*))?}", self.outcome[1])
        plain = re.sub(r"{(\w+)(?::[^}]*)?}", r"{\1}", self.outcome[1])
        pattern, rest = "", self.outcome[1]
        for name, regex in fields:
            before, _, rest = rest.partition("{" + name + (":" + regex if regex else "") + "}")
            pattern += re.escape(before) + f"(?P<{name}>{regex or '.+'})"
        return plain, [name for name, _ in fields], pattern + re.escape(rest)

    def column(self, parts: Mapping[str, str]) -> tuple[str, str] | None:
        """(kind, column) of the per-example outcome of the record with these slice parts, or None."""
        if self.outcome is None:
            return None
        plain, names, _ = self._template()
        own = {k: v for k, v in parts.items() if k not in self.fixed}
        if set(own) != set(names) or any(parts.get(k) != v for k, v in self.fixed.items()):
            return None
        return self.outcome[0], plain.format(**own)

    def parts_of(self, kind: str, column: str) -> dict[str, str] | None:
        """The slice parts a per-example column stands for (the inverse of ``column``), or None."""
        if self.outcome is None or self.outcome[0] != kind:
            return None
        found = re.fullmatch(self._template()[2], column)
        return None if found is None else {**self.fixed, **found.groupdict()}

    def is_key(self, parts: Mapping[str, str]) -> bool:
        """Whether ``compare`` shows this figure unless asked for all."""
        if self.key_slices is None or set(parts) != set(self.key_slices):
            return False
        return all(fnmatch.fnmatchcase(parts[k], glob) for k, glob in self.key_slices.items())


@cache
def owners() -> dict[str, tuple[str, Measure]]:
    """Every registered metric's measures, by record metric name: (the metric's name, the measure)."""
    from harness.registry import metrics

    return {measure.name: (entry.name, measure) for entry in metrics.entries()
            for measure in getattr(entry.obj, "measures", ())}  # fmt: skip


def measure(name: str) -> Measure | None:
    """The declaration of a record metric (None for one no registered metric declares: a plugin's)."""
    found = owners().get(name)
    return None if found is None else found[1]


def metric_of(name: str) -> str | None:
    """The registered metric whose records carry ``name`` (``tabular_shift.accuracy`` -> ``tabular-shift``)."""
    found = owners().get(name)
    return None if found is None else found[0]


def outcomes(kind: str) -> list[Measure]:
    """The measures whose per-example outcomes are stored under ``kind``."""
    return [m for _, m in owners().values() if m.outcome is not None and m.outcome[0] == kind]


def format_value(metric: str, value: float, low: float, high: float) -> str:
    """``91.8 ±0.5``: the value and the larger side of its CI (the exact bounds are in the store)."""
    if isinstance(value, float) and math.isnan(value):
        return ""
    declared = measure(metric)
    if declared is not None and declared.verdicts:
        return declared.verdicts.get(value, f"{value:g}")
    if declared is not None and declared.category == "efficiency":  # counts, timings: spread only where there is one
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
        return text if high == low else f"{text} ±{max(high - value, value - low):.2g}"
    percent = declared.percent if declared is not None else "accuracy" in metric
    scale, digits = (100, 1) if percent else (1, 3)
    half = max(high - value, value - low) * scale
    return f"{value * scale:.{digits}f} ±{half:.{digits}f}"
