"""Text classifiers: the module decodes the task's byte rows (``harness.tasks.text``), tokenises them
with the model's own tokenizer and returns logits; attributions use ``forward_ids`` and the embedding
layer (captum's ``LayerIntegratedGradients``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from harness.tasks.text import decode_texts


class TextClassifier(nn.Module):
    def __init__(self, model: nn.Module, tokenizer: Any, max_length: int = 256) -> None:
        super().__init__()
        self.model, self.tokenizer, self.max_length = model, tokenizer, max_length

    def tokenize(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """Byte rows -> ``input_ids`` and ``attention_mask`` on the model's device."""
        encoded = self.tokenizer(
            decode_texts(rows), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        device = next(self.model.parameters()).device
        return {k: encoded[k].to(device) for k in ("input_ids", "attention_mask")}

    def forward_ids(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.forward_ids(**self.tokenize(rows))

    @property
    def embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else 0)

    @property
    def special_ids(self) -> set[int]:
        return set(self.tokenizer.all_special_ids)


class TokenIds(nn.Module):
    """A text model as a function of token ids alone, for attributions: padding is what is masked, so
    a token replaced by the pad token is removed from what the model reads. ``order`` puts the logits in
    the task's class order, as the evaluated model does."""

    def __init__(self, text: TextClassifier, order: torch.Tensor | None = None) -> None:
        super().__init__()
        self.text = text
        self.register_buffer("order", order)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        logits = self.text.forward_ids(ids, (ids != self.text.pad_id).long())
        return logits if self.order is None else logits.index_select(1, self.order)

    @property
    def embeddings(self) -> nn.Module:
        return self.text.embeddings


def token_ids_model(module: nn.Module) -> TokenIds:
    """The ``TokenIds`` view of an evaluated text model (a ``TextClassifier``, maybe reordered)."""
    order = getattr(module, "order", None)
    inner = getattr(module, "body", module) if order is not None else module
    if not isinstance(inner, TextClassifier):
        raise ValueError(f"explaining text needs a tokenising text model (hf:...); got {type(module).__name__}")
    return TokenIds(inner, order)
