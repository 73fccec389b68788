"""The ``Record``: one measured number with its confidence interval, slice and provenance.

Metrics return records, the store keeps them, leaderboards and model cards read them: one shape for all.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

Direction = Literal["higher", "lower"]
CATEGORIES = ("accuracy", "calibration", "robustness", "ood", "fairness", "privacy", "interpretability", "efficiency")


@dataclass(frozen=True)
class Record:
    model: str
    task: str
    metric: str  # e.g. "accuracy.top1", "calibration.ece"
    value: float
    ci_low: float
    ci_high: float
    n: int
    direction: Direction
    category: str
    slice: str = "overall"  # "overall", "class=Sneaker", "group=female", "attack=pgd-linf@0.03"
    params: dict[str, Any] = field(default_factory=dict)
    flags: tuple[str, ...] = ()  # anything that makes the number suspect, e.g. "nonfinite-logits=3"
    run_id: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)  # the job's: the store keeps it once per job
    job: str = ""  # the key of the job (its spec's hash) that measured it; empty until stored
    interval: str = ""  # how [ci_low, ci_high] was made: harness.stats.METHODS; empty for legacy records

    def __post_init__(self) -> None:
        if self.direction not in ("higher", "lower"):
            raise ValueError(f"direction must be 'higher' or 'lower', not {self.direction!r}")
        if self.category not in CATEGORIES:
            raise ValueError(f"category must be one of {CATEGORIES}, not {self.category!r}")
        if not (isinstance(self.n, int) and self.n >= 0):
            raise ValueError(f"n must be a non-negative int, not {self.n!r}")

    @property
    def parts(self) -> dict[str, str]:
        """The slice as key=value pairs (``harness.slices``): {} for overall."""
        from harness.slices import parse

        return parse(self.slice)

    @property
    def ok(self) -> bool:
        """True when the value is finite and nothing flagged it."""
        return math.isfinite(self.value) and not self.flags

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["flags"] = list(self.flags)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["flags"] = tuple(kwargs.get("flags") or ())
        for key in ("params", "provenance"):
            if isinstance(kwargs.get(key), str):
                kwargs[key] = json.loads(kwargs[key])
        return cls(**kwargs)
