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


class Tempered(nn.Module):
    """``body``'s logits divided by a fitted temperature (``+temperature``)."""

    def __init__(self, body: nn.Module, temperature: float) -> None:
        super().__init__()
        self.body = body
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) / self.temperature


class PriorBatchNorm(nn.Module):
    """A BatchNorm layer that normalises each example with a mix of its own statistics (over the
    positions of each channel) and the training statistics the layer holds, weighted ``prior`` to 1
    (Schneider et al. 2020, eq. 1 with n = 1): mean = (N * mu_train + mu_x) / (N + 1), and likewise the
    variance. The affine part is the layer's own."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, prior: float) -> None:
        super().__init__()
        self.bn, self.prior = bn, float(prior)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn = self.bn
        dims = tuple(range(2, x.dim()))
        shape = (1, -1) + (1,) * len(dims)
        mean, var = bn.running_mean.view(shape), bn.running_var.view(shape)
        if dims:  # a vector per example has no positions to average over: the training statistics alone
            w = self.prior / (self.prior + 1)
            mean = w * mean + (1 - w) * x.mean(dims, keepdim=True)
            var = w * var + (1 - w) * x.var(dims, unbiased=False, keepdim=True)
        out = (x - mean) / torch.sqrt(var + bn.eps)
        if bn.affine:
            out = out * bn.weight.view(shape) + bn.bias.view(shape)
        return out


class GradientsFrom(nn.Module):
    """The outputs of ``model``, the gradients of ``surrogate`` (a straight-through estimator, as in
    BPDA, Athalye et al. 2018): attacks on a model without gradients (int8 kernels) follow its float
    parent's gradients while every success is judged on the model itself."""

    def __init__(self, surrogate: nn.Module, model: nn.Module) -> None:
        super().__init__()
        self.surrogate, self.model = surrogate, model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled() or not x.requires_grad:
            return self.model(x)
        stand_in = self.surrogate(x)
        with torch.no_grad():
            real = self.model(x.detach()).to(stand_in.dtype)
        return _Through.apply(stand_in, real)  # the model's values exactly, not stand_in + (real - stand_in)


class _Through(torch.autograd.Function):
    @staticmethod
    def forward(ctx: object, stand_in: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return real.clone()

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


class PerExample(nn.Module):
    """``body`` called on one example at a time: dynamic quantization takes each activation's int8 range
    from the whole batch it sees, so without this an example's logits would depend on the examples
    batched with it (and on the run's batch size), which no job spec names."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.body(x[i : i + 1]) for i in range(len(x))]) if len(x) > 1 else self.body(x)
