"""The ``Model``: an ``nn.Module`` from raw task inputs to logits, with a name, a fingerprint and info."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch
from torch import nn

from harness.decoding import Decoding
from harness.errors import HarnessError


class ModelLoadError(HarnessError, ValueError):
    """A model that cannot be built or loaded; the message names the model and the file."""


class IncompatibleError(HarnessError, ValueError):
    """A model that cannot be evaluated on a task (other modality, input shape or classes)."""


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """``module`` with ``requires_grad`` off for every parameter, restored afterwards: gradients with
    respect to the inputs (attacks, attributions) then cost no weight gradients."""
    params = list(module.parameters())
    before = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, before, strict=True):
            p.requires_grad_(flag)


def fingerprint_state(state: Mapping[str, torch.Tensor], config: dict[str, Any]) -> str:
    """Hash of a state dict (names, dtypes, shapes, bytes) and the config that built the module."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(state.items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:16]


@dataclass
class Model:
    """A classifier ready to evaluate. ``module`` takes inputs in the task's raw space (images in
    [0, 1], NCHW; tabular rows as ``harness.tasks.tabular`` encodes them), normalisation included,
    and returns logits. It is always in eval mode."""

    name: str
    module: nn.Module
    modality: str
    config: dict[str, Any] = field(default_factory=dict)  # what built it (source, architecture), not file paths
    info: dict[str, Any] = field(default_factory=dict)  # parameters, source, license, training data...
    decoding: Decoding | None = None  # how it wants image files decoded (its data config), where it has one
    parent: str | None = None  # a variant's parent's fingerprint (``harness.variants``), None for a model
    lineage: tuple[dict[str, Any], ...] = ()  # the variant steps from the parent model, in order
    # where ``module`` has no gradients (a quantized variant), a float stand-in whose gradients attacks
    # follow: its float parent (``harness.variants``); None where the module's own gradients exist
    surrogate: nn.Module | None = None

    def __post_init__(self) -> None:
        self.module.eval()
        self.info.setdefault("parameters", sum(p.numel() for p in self.module.parameters()))
        if self.decoding is not None:  # the inputs it sees depend on it: part of what the fingerprint names
            self.config = {**self.config, "decoding": self.decoding.model_dump(mode="json")}

    @cached_property
    def fingerprint(self) -> str:
        if self.parent is not None:  # a variant: its parent's and the last transform's (quantized weights
            from harness.variants import derived_fingerprint  # are not plain tensors to hash)

            return derived_fingerprint(self.parent, self.lineage[-1])
        return fingerprint_state(self.module.state_dict(), self.config)

    @cached_property
    def device(self) -> torch.device:
        tensor = next(iter(self.module.state_dict().values()), None)
        return tensor.device if tensor is not None else torch.device("cpu")

    def to(self, device: str | torch.device) -> Model:
        self.module.to(device)
        if self.surrogate is not None:
            self.surrogate.to(device)
        self.device = torch.device(device)
        return self

    @torch.inference_mode()
    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        self.module.eval()
        return self.module(inputs.to(self.device, non_blocking=True))
