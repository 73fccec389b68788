"""``int8``: dynamic int8 quantization of the Linear layers; ``fp16`` and ``bf16``: weight casts.

``int8`` goes through ``torch.ao.quantization.quantize_dynamic``, which runs fbgemm's (x86) or
qnnpack's (Arm) int8 kernels on the CPU, so a quantized model's size and latency change for real. It
is deprecated upstream in favour of torchao's ``quantize_``, but torchao's int8 dynamic configuration
runs 7x slower than float32 on the CPU in eager mode (measured here on a 784-512-10 MLP, batch 256:
234 ms against 32 ms; ``quantize_dynamic``: 3.4 ms): its fast paths need ``torch.compile``. A
quantized model runs on the CPU only.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from harness.registry import variants
from harness.variants.base import Variant

if TYPE_CHECKING:
    from torch import nn

    from harness.models.base import Model
    from harness.tasks.base import Task


@variants.register("int8", "dynamic int8 quantization of the Linear layers (fbgemm/qnnpack kernels, CPU)")
class Int8(Variant):
    name = "int8"

    def check(self, module: nn.Module, model: Model, task: Task) -> None:
        from torch import nn

        from harness.models.base import IncompatibleError

        if not any(isinstance(m, nn.Linear) for m in module.modules()):
            raise IncompatibleError(f"{model.name}+int8: the model has no Linear layer to quantize")

    def transform(self, module: nn.Module, task: Task, **params: Any) -> nn.Module:
        import torch
        from torch.ao.quantization import quantize_dynamic

        with warnings.catch_warnings():  # its deprecation notice, once per process, is for library authors
            warnings.simplefilter("ignore")
            return quantize_dynamic(module.eval(), {torch.nn.Linear}, dtype=torch.qint8)


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
