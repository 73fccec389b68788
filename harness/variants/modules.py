"""Modules that variants wrap models in."""

from __future__ import annotations

import torch
from torch import nn


class CastInputs(nn.Module):
    """Runs ``body`` in ``dtype``: inputs cast to it, logits cast back to float32."""

    def __init__(self, body: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.body, self.dtype = body, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.to(self.dtype)).float()


class Tempered(nn.Module):
    """``body``'s logits divided by a fitted temperature (``+temperature``)."""

    def __init__(self, body: nn.Module, temperature: float) -> None:
        super().__init__()
        self.body = body
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) / self.temperature
