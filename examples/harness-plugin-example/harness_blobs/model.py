"""The nearest-centroid classifier as a torch module (imported when a model is built)."""

from __future__ import annotations

import torch
from torch import nn


class NearestCentroid(nn.Module):
    def __init__(self, centroids: torch.Tensor, p: float) -> None:
        super().__init__()
        self.register_buffer("centroids", centroids)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -torch.cdist(torch.nan_to_num(x), self.centroids, p=self.p)  # nearer is more likely
