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
