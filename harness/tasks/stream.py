"""Reading a split in batches: a ``torch.utils.data.DataLoader`` over the split's examples, with worker
processes that decode files into uint8 tensors, pinned memory and prefetching on CUDA; images become
float in [0, 1] only once they are on the device.

Splits held in memory (the shipped tasks, tables, texts) are read through the same functions without
workers: slicing a tensor costs nothing a worker could save.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch.utils.data import Dataset

log = logging.getLogger(__name__)


def default_workers() -> int:
    """Decoding workers when none are asked for: one per CPU the process may use, less one for the
    model, at most 8 (beyond that a single model rarely keeps up)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(8, cpus - 1))


def to_device(batch: torch.Tensor, device: torch.device | None) -> torch.Tensor:
    """A streamed batch on ``device`` in the task's raw space: uint8 pixels become float in [0, 1] there
    (streamed datasets yield images; texts and tables are held in memory)."""
    import torch

    if device is not None:
        batch = batch.to(device, non_blocking=True)
    return batch.float().div_(255) if batch.dtype == torch.uint8 else batch


def stream(
    dataset: Dataset,
    batch_size: int,
    *,
    positions: Sequence[int] | np.ndarray | None = None,
    workers: int = 0,
    device: torch.device | None = None,
) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    """Batches of ``dataset`` (at ``positions``, in order), decoded by ``workers`` processes: yields
    (inputs on ``device``, the batch's positions). Where worker processes cannot start (a daemonic
    process, a sandbox without shared memory), it says so once and reads in this process."""
    import torch
    from torch.utils.data import DataLoader, Subset

    rows = np.arange(len(dataset)) if positions is None else np.asarray(positions, dtype=np.int64)
    source = Subset(dataset, rows.tolist())
    cuda = device is not None and torch.device(device).type == "cuda"
    workers = min(workers, max(len(rows) // max(batch_size, 1), 1)) if len(rows) else 0

    def loader(n: int) -> DataLoader:
        return DataLoader(source, batch_size=batch_size, shuffle=False, num_workers=n, pin_memory=cuda,
                          prefetch_factor=4 if n else None, persistent_workers=False)  # fmt: skip

    try:
        batches = iter(loader(workers))
    except (RuntimeError, AssertionError, OSError) as exc:  # workers could not start
        log.warning("reading without worker processes: %s could not start them (%s)", workers, exc)
        batches = iter(loader(0))
    start = 0
    for batch in batches:
        yield to_device(batch, device), rows[start : start + len(batch)]
        start += len(batch)
