"""The fitted preprocessing of tabular models, as an ``nn.Module`` whose statistics are buffers.

It maps a raw row (numeric features in their units, categorical codes, NaN where missing; see
``harness.tasks.tabular``) to the vector a network reads: numeric features log1p'd where the schema
says so, missing values filled with the training median, standardised with training statistics;
categorical codes one-hot encoded, a missing or unknown code filled with the training mode. Being
buffers, the statistics are saved with the weights and travel with the model.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.tasks.tabular import TabularSchema


class TabularPreprocessor(nn.Module):
    def __init__(self, schema: TabularSchema) -> None:
        super().__init__()
        self.n_numeric = len(schema.numeric)
        self.sizes = [len(v) for v in schema.categorical.values()]
        log = [name in schema.log_scaled for name in schema.numeric]
        self.register_buffer("log_mask", torch.tensor(log, dtype=torch.bool))
        self.register_buffer("fill", torch.zeros(self.n_numeric))
        self.register_buffer("mean", torch.zeros(self.n_numeric))
        self.register_buffer("std", torch.ones(self.n_numeric))
        self.register_buffer("mode", torch.zeros(len(self.sizes)))

    @property
    def out_features(self) -> int:
        return self.n_numeric + sum(self.sizes)

    def _numeric(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.where(self.log_mask, torch.log1p(x.clamp_min(0)), x)
        return torch.where(torch.isnan(x), self.fill, x)

    @torch.no_grad()
    def fit(self, inputs: torch.Tensor) -> TabularPreprocessor:
        numeric = inputs[:, : self.n_numeric].double()
        numeric = torch.where(self.log_mask, torch.log1p(numeric.clamp_min(0)), numeric)
        self.fill.copy_(numeric.nanmedian(dim=0).values.float())
        filled = torch.where(torch.isnan(numeric), self.fill.double(), numeric)
        self.mean.copy_(filled.mean(0).float())
        self.std.copy_(filled.std(0).clamp_min(1e-6).float())
        codes = inputs[:, self.n_numeric :]
        for j, size in enumerate(self.sizes):
            column = codes[:, j]
            counts = torch.bincount(column[~torch.isnan(column)].long(), minlength=size)
            self.mode[j] = counts.argmax()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        numeric = (self._numeric(x[:, : self.n_numeric]) - self.mean) / self.std
        codes = x[:, self.n_numeric :]
        codes = torch.where(torch.isnan(codes), self.mode, codes).long()
        parts = [numeric]
        for j, size in enumerate(self.sizes):
            parts.append(nn.functional.one_hot(codes[:, j].clamp(0, size - 1), size).to(x.dtype))
        return torch.cat(parts, dim=1)
