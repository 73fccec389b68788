"""``JobSpec``: everything that determines one job's figures, resolved, as a frozen object.

A job's key is the hash of its spec, so two computations never share a key and the same computation
always gets the same one. The spec is stored as JSON on the job (``jobs.spec``); leaderboards, cards,
``compare`` and ``export`` read it to choose, per (model, task, metric), one evaluation and never mix
two in one figure. What a user typed never enters it directly: model names are canonical (absolute
paths, pinned revisions), parameters have their defaults filled in, the examples are counted and
hashed after every default is applied.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

SPEC_VERSION = 1  # bump when the spec's own shape changes


def digest(value: Any, length: int = 24) -> str:
    """A stable hash of JSON-able data."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:length]


def index_digest(indices: np.ndarray) -> str:
    """The hash of a set of example indices (into the task's evaluation split), whatever their order."""
    return hashlib.sha256(np.sort(np.asarray(indices, dtype=np.int64)).tobytes()).hexdigest()[:16]


@dataclass(frozen=True)
class ModelIdentity:
    name: str  # canonical: absolute paths, so hf:./vit and hf:/abs/vit are one model
    fingerprint: str  # weights, config, and for user code its source (torch:<module>:<Class>, TorchScript)
    checkpoint: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskIdentity:
    name: str
    fingerprint: str  # the evaluation split's data
    options: dict[str, Any] = field(default_factory=dict)
    # what the task left out of the split because an option asked it to (unreadable files, rows without a
    # label), named so that a figure says what it is not about; absent from the spec's text when empty
    excluded: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExampleSet:
    """The examples a job evaluates: ``count`` of the split's ``total``, identified by ``indices`` (the
    hash of their indices in the split). ``subset`` is the run's seeded cut (``--limit``), if any."""

    total: int
    count: int
    indices: str
    subset: dict[str, int] | None = None  # {"limit": L, "seed": S} when the run evaluated a seeded subset


@dataclass(frozen=True)
class MetricSpec:
    name: str
    version: int
    params: dict[str, Any]  # every parameter, defaults filled in


@dataclass(frozen=True)
class JobSpec:
    model: ModelIdentity
    task: TaskIdentity
    examples: ExampleSet
    metric: MetricSpec
    seed: int
    resamples: int
    depends: dict[str, Any] = field(default_factory=dict)  # other models' fingerprints, generated data's version
    device: dict[str, Any] | None = None  # device-bound metrics: the device and the library and driver versions
    country: str | None = None  # metrics converting energy to carbon
    spec_version: int = SPEC_VERSION

    @property
    def key(self) -> str:
        return digest(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not data["task"]["excluded"]:  # the keys of specs written before it existed stay as they were
            del data["task"]["excluded"]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        return cls(
            model=ModelIdentity(**data["model"]),
            task=TaskIdentity(**data["task"]),
            examples=ExampleSet(**data["examples"]),
            metric=MetricSpec(**data["metric"]),
            **{k: v for k, v in data.items() if k not in ("model", "task", "examples", "metric")},
        )

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        return cls.from_dict(json.loads(text))

    def without_model(self) -> dict[str, Any]:
        """The spec less the model's identity: two models' jobs with equal such specs measured the same
        thing the same way, so their figures pair."""
        data = self.to_dict()
        data.pop("model")
        return data

    def describe(self) -> str:
        """One line for people: which examples, seed and resamples."""
        cut = f", seeded subset (limit {self.examples.subset['limit']})" if self.examples.subset else ""
        return (f"{self.metric.name} v{self.metric.version} on {self.examples.count:,} of "
                f"{self.examples.total:,} examples{cut}, seed {self.seed}, {self.resamples} resamples")  # fmt: skip
