"""What a model is: parameters, weight bytes, and the work of one forward pass (FLOPs)."""

from __future__ import annotations

import copy

import torch


def parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def weight_bytes(module: torch.nn.Module) -> int:
    """Bytes of the parameters and buffers as stored (what the weights file holds, less its header)."""
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def flops_per_sample(module: torch.nn.Module, sample: torch.Tensor) -> int:
    """Floating-point operations of one forward pass on one example, counted by
    ``torch.utils.flop_counter.FlopCounterMode`` on an uncompiled copy on the CPU. It counts a
    multiply-add as 2 FLOPs (so MACs = FLOPs / 2 for matmuls and convolutions) and counts only the
    operators it knows (matmuls, convolutions, attention), not elementwise ones."""
    from torch.utils.flop_counter import FlopCounterMode

    clone = copy.deepcopy(module).to("cpu").eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        clone(sample[None].to("cpu") if sample.ndim else sample)
    return int(counter.get_total_flops())
