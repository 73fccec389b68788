"""ODIN (Liang et al. 2018): the maximum softmax probability at temperature T of the input moved by
``eps`` against the gradient of the loss at the predicted class, ``x - eps sign(grad_x CE(f(x)/T, y^))``.
``eps`` is in the task's input units (images in [0, 1]); T = 1000 and eps = 0.0014 are the paper's and
pytorch-ood's defaults. One forward and backward pass and one more forward pass per batch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.detectors.base import Detector
from harness.registry import detectors

if TYPE_CHECKING:
    import torch
    from torch import nn


@detectors.register("odin", "ODIN: temperature-scaled softmax of a gradient-perturbed input (Liang et al. 2018)")
class Odin(Detector):
    name = "odin"
    reads = "inputs"
    citation = "Liang, Li and Srikant. Enhancing the Reliability of Out-of-distribution Image Detection. ICLR 2018."
    temperature = 1000.0
    eps = 0.0014

    def settings(self) -> dict[str, object]:
        return {"temperature": self.temperature, "eps": self.eps}

    def score_batch(self, module: nn.Module, batch: torch.Tensor, gradients: nn.Module | None = None) -> torch.Tensor:
        """The gradient comes from ``gradients`` where given (the float parent of an int8 model)."""
        import torch
        from torch.nn import functional as F

        with torch.inference_mode(False), torch.enable_grad():
            x = batch.detach().clone().requires_grad_(True)
            logits = (gradients or module)(x)
            loss = F.cross_entropy(logits / self.temperature, logits.argmax(1))
            (grad,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            moved = module(x.detach() - self.eps * grad.sign())
            return (moved.double() / self.temperature).softmax(1).max(1).values
