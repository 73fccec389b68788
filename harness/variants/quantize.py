"""``int8``: dynamic int8 quantization of the Linear layers; ``int8-static``: weights and activations
in int8, calibrated; ``fp16`` and ``bf16``: weight casts.

``int8`` goes through ``torch.ao.quantization.quantize_dynamic``, which runs fbgemm's (x86) or
qnnpack's (Arm) int8 kernels on the CPU, so a quantized model's size and latency change for real. It
is deprecated upstream in favour of torchao's ``quantize_``, but torchao's int8 dynamic configuration
runs 7x slower than float32 on the CPU in eager mode (measured here on a 784-512-10 MLP, batch 256:
234 ms against 32 ms; ``quantize_dynamic``: 3.4 ms): its fast paths need ``torch.compile``. A
quantized model runs on the CPU only. Dynamic quantization takes each activation's range from the
batch it is given, so ``int8`` runs its examples one at a time (``PerExample``): an example's logits
are then its own, whatever it is batched with, at the cost of batching's speed.

``int8-static`` goes through ``torch.ao.quantization``'s FX graph mode (``prepare_fx`` with the x86
qconfig mapping, observers run on a seeded sample of 1,000 examples of the training split, then
``convert_fx``), which gives real quantized convolution and Linear kernels in eager mode. torchao's
replacement, PT2E with the X86 Inductor quantizer, produces quantize/dequantize pairs around float
operators that become int8 kernels only under ``torch.compile`` with Inductor; eager, it would
measure fake quantization's latency, not int8's. A module that FX cannot trace (control flow on its
inputs) is quantized from its second child on, its preprocessing kept in float; one whose body cannot
be traced either is refused at plan time with the tracer's reason.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.registry import variants
from harness.variants.base import Variant
from harness.variants.fitted import FittedOnSplit

if TYPE_CHECKING:
    import torch
    from torch import nn

    from harness.models.base import Model
    from harness.tasks.base import Split, Task


@variants.register("int8", "dynamic int8 quantization of the Linear layers (fbgemm/qnnpack kernels, CPU)")
class Int8(Variant):
    name = "int8"
    version = 2  # 2: examples one at a time (``PerExample``)
    differentiable = False

    def check(self, module: nn.Module, model: Model, task: Task) -> None:
        from torch import nn

        from harness.models.base import IncompatibleError

        if not any(isinstance(m, nn.Linear) for m in module.modules()):
            raise IncompatibleError(f"{model.name}+int8: the model has no Linear layer to quantize")

    def transform(self, module: nn.Module, task: Task, **params: Any) -> nn.Module:
        import torch
        from torch.ao.quantization import quantize_dynamic

        from harness.variants.modules import PerExample

        with warnings.catch_warnings():  # its deprecation notice, once per process, is for library authors
            warnings.simplefilter("ignore")
            return PerExample(quantize_dynamic(module.eval(), {torch.nn.Linear}, dtype=torch.qint8))


@variants.register("int8-static", "static int8 quantization of weights and activations, calibrated on the "
                   "training split (torch.ao FX, fbgemm/onednn kernels, CPU)")  # fmt: skip
class Int8Static(FittedOnSplit):
    name = "int8-static"
    pattern = "int8-static[=<split>]"
    differentiable = False
    examples = 1000

    def check(self, module: nn.Module, model: Model, task: Task) -> None:
        from harness.models.base import IncompatibleError
        from harness.variants.prune import prunable

        if not prunable(module):
            raise IncompatibleError(f"{model.name}+int8-static: the model has no convolution or Linear layer "
                                    "to quantize")  # fmt: skip

    def fit(self, module: nn.Module, sample: Split, **params: Any) -> tuple[nn.Module, dict[str, Any]]:
        import torch
        from torch import nn

        from harness.models.base import IncompatibleError

        module.eval()
        example = sample.take(np.arange(min(2, len(sample))))
        ways = [(None, module, "whole module")]  # (kept in float, quantized, what the lineage says)
        if isinstance(module, nn.Sequential) and len(module) > 1:
            ways.append((module[0], module[1:], "after its first layer (kept in float)"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for first, body, what in ways:
                try:
                    if first is None:
                        return quantize_static(body, sample, example), {"quantized": what}
                    with torch.inference_mode():
                        inner = first(example)
                    return nn.Sequential(first, quantize_static(body, sample, inner, first=first)), {"quantized": what}
                except Exception as exc:  # FX's tracer raises what the traced code raises
                    failure = exc
        raise IncompatibleError(f"+int8-static: torch.fx cannot trace the model ({failure})") from failure


def quantize_static(module: nn.Module, sample: Split, example: torch.Tensor,
                    first: nn.Module | None = None) -> nn.Module:  # fmt: skip
    """``module`` prepared with observers, run on ``sample`` (through ``first`` where given), converted."""
    import torch
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    prepared = prepare_fx(module, get_default_qconfig_mapping("x86"), example_inputs=(example,))
    with torch.inference_mode():
        for x, _ in sample.batches(256):
            prepared(first(x) if first is not None else x)
    return convert_fx(prepared)


class Cast(Variant):
    """Weights and computation in a lower-precision float; inputs are cast on the way in and logits
    back to float32 on the way out."""

    dtype_name: str

    def transform(self, module: nn.Module, task: Task, **params: Any) -> nn.Module:
        import torch

        from harness.variants.modules import CastInputs

        dtype = getattr(torch, self.dtype_name)
        return CastInputs(module.to(dtype), dtype)


@variants.register("fp16", "weights and computation in float16 (inputs cast in, logits back to float32)")
class Float16(Cast):
    name = "fp16"
    dtype_name = "float16"


@variants.register("bf16", "weights and computation in bfloat16 (inputs cast in, logits back to float32)")
class BFloat16(Cast):
    name = "bf16"
    dtype_name = "bfloat16"
