"""What a model is: parameters, weight bytes, and the work of one forward pass (FLOPs)."""

from __future__ import annotations

import copy

import torch

QUANTIZATION_KEYS = ("scale", "zero_point", "dtype")  # a quantized tensor's parameters, not weights


def stored(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Every tensor of the state dict, packed ones unpacked: a quantized layer keeps its int8 weights in
    packed parameters (``_packed_params``), which ``module.parameters()`` does not list."""
    out = []
    for key, value in module.state_dict().items():
        for tensor in value if isinstance(value, tuple | list) else (value,):
            if isinstance(tensor, torch.Tensor):
                out.append((key, tensor))
    return out


def parameters(module: torch.nn.Module) -> int:
    """Weights and biases, float or quantized (buffers such as BatchNorm statistics excepted)."""
    buffers = {name for name, _ in module.named_buffers()}
    return sum(t.numel() for key, t in stored(module)
               if key not in buffers and not key.split(".")[-1].endswith(QUANTIZATION_KEYS))  # fmt: skip


def weight_bytes(module: torch.nn.Module) -> int:
    """Bytes of every stored tensor as stored, int8 weights one byte each (what the weights file holds,
    less its header)."""
    return sum(t.numel() * t.element_size() for _, t in stored(module))


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
