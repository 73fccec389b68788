"""Text tasks: the raw space text models see, and the encoding that keeps it a tensor.

A text example reaches a model as its UTF-8 bytes, zero-padded into a ``uint8`` row: a split stays a
tensor (subsets, batches and the store's fingerprints work as for images and tables) and the model
adapter decodes the strings and tokenises them itself, so perturbations act on the text a person reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def encode_texts(texts: Sequence[str], width: int | None = None) -> torch.Tensor:
    """Strings -> uint8 [n, width] of their UTF-8 bytes, zero-padded (NUL characters are dropped)."""
    import torch

    raw = [str(t).replace("\x00", "").encode("utf-8") for t in texts]
    width = max([len(r) for r in raw] + [1]) if width is None else width
    out = np.zeros((len(raw), width), dtype=np.uint8)
    for i, r in enumerate(raw):
        if len(r) > width:
            raise ValueError(f"text {i} has {len(r)} bytes; the encoding holds {width}")
        out[i, : len(r)] = np.frombuffer(r, dtype=np.uint8)
    return torch.from_numpy(out)


def decode_texts(rows: torch.Tensor) -> list[str]:
    """uint8 [n, width] rows -> the strings they hold."""
    array = rows.detach().cpu().numpy().astype(np.uint8, copy=False)
    return [bytes(row).rstrip(b"\x00").decode("utf-8", errors="replace") for row in array]
