"""captum attribution methods by name.

Each entry builds, for a module, an ``explain(inputs, target=..., baselines=...)`` function that
returns one attribution per input feature (the shape of ``inputs``). The signature is the one
captum's ``sensitivity_max`` passes its keyword arguments to, so the same function serves the
explanation and its scores. Methods that take no baseline ignore it. ``@method`` wraps what a builder
returns: the module's parameters frozen meanwhile (no weight gradients computed), captum's notices
silenced, and the 1-tuples captum's metrics pass unpacked, so a plugin's builder (entry point group
``harness.explainers``) deals in plain tensors.

torch and captum are imported inside the builders, so listing the methods stays fast.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.registry import explainers

if TYPE_CHECKING:
    import torch
    from torch import nn

Explain = Callable[..., "torch.Tensor"]
Inputs = "torch.Tensor | tuple[torch.Tensor]"


@dataclass(frozen=True)
class Settings:
    """The budgets of the methods (the interpretability metric's parameters fill them)."""

    ig_steps: int = 32  # captum batches the steps itself (internal_batch_size); occlusion and ablations too
    shap_samples: int = 16
    shap_stdev: float = 0.09
    occlusion_window: int = 4
    occlusion_stride: int = 2
    shapley_samples: int = 25
    batch_size: int = 256  # captum's internal batch: examples x steps (or perturbations) per forward pass


@dataclass(frozen=True)
class Method:
    name: str
    build: Callable[[nn.Module, Settings], Explain]
    modalities: tuple[str, ...]
    uses_baseline: bool
    random: bool  # draws random numbers (seeded by the caller)
    passes: Callable[[Settings], int]  # forward passes one example costs in one call (memory, not time)

    def chunk(self, settings: Settings) -> int:
        """Examples per call, so that one call holds about ``settings.batch_size`` passes at once."""
        return max(1, settings.batch_size // max(1, self.passes(settings)))


def method(name: str, description: str, modalities: tuple[str, ...], *, uses_baseline: bool = True,
           random: bool = False, passes: Callable[[Settings], int] = lambda s: 1,
           ) -> Callable[[Callable[[nn.Module, Settings], Explain]], Method]:  # fmt: skip
    def add(build: Callable[[nn.Module, Settings], Explain]) -> Method:
        def built(module: nn.Module, settings: Settings) -> Explain:
            return _gradient_free(build(module, settings), module)

        entry = Method(name, built, modalities, uses_baseline, random, passes)
        explainers.register(name, description)(entry)
        return entry

    return add


def _gradient_free(explain: Explain, module: nn.Module) -> Explain:
    from harness.models.base import frozen

    def run(inputs: Inputs, target: torch.Tensor, baselines: Inputs | None = None) -> Inputs:
        # captum's metrics call explanation functions with 1-tuples of inputs and baselines
        packed = isinstance(inputs, tuple)
        x = inputs[0] if packed else inputs
        base = baselines[0] if isinstance(baselines, tuple) else baselines
        with frozen(module), warnings.catch_warnings():
            for message in QUIET:
                warnings.filterwarnings("ignore", message=message)
            out = explain(x, target=target, baselines=base).detach().contiguous()  # captum's metrics .view() it
        return (out,) if packed else out

    return run


IMAGE, TABULAR = ("image",), ("tabular",)
# captum's notices about what it does on purpose (inputs made to require gradients, hooks on activations)
QUIET = (r"Input Tensor \d+ did not already require gradients", r"Setting forward, backward hooks")


@method("saliency", "absolute input gradient of the target logit (Simonyan et al., 2014)", IMAGE,
        uses_baseline=False)  # fmt: skip
def saliency(module: nn.Module, settings: Settings) -> Explain:
    from captum.attr import Saliency

    method = Saliency(module)
    return lambda x, target, baselines: method.attribute(x, target=target, abs=True)


@method("integrated-gradients", "path integral of gradients from the baseline (Sundararajan et al., 2017)", IMAGE)
def integrated_gradients(module: nn.Module, settings: Settings) -> Explain:
    from captum.attr import IntegratedGradients

    method = IntegratedGradients(module)

    def explain(x: torch.Tensor, target: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
        return method.attribute(x, baselines=baselines, target=target, n_steps=settings.ig_steps,
                                internal_batch_size=settings.batch_size)  # fmt: skip

    return explain


@method("gradient-shap", "expected gradients from noisy points between baseline and input (SHAP)", IMAGE,
        random=True, passes=lambda s: s.shap_samples)  # fmt: skip
def gradient_shap(module: nn.Module, settings: Settings) -> Explain:
    from captum.attr import GradientShap

    method = GradientShap(module)

    def explain(x: torch.Tensor, target: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
        # the reference set: each example's own baseline (all alike for a black baseline)
        return method.attribute(x, baselines=baselines, target=target, n_samples=settings.shap_samples,
                                stdevs=settings.shap_stdev)  # fmt: skip

    return explain


@method("input-x-gradient", "input times the gradient of the target logit", IMAGE, uses_baseline=False)
def input_x_gradient(module: nn.Module, settings: Settings) -> Explain:
    from captum.attr import InputXGradient

    method = InputXGradient(module)
    return lambda x, target, baselines: method.attribute(x, target=target)


@method("deeplift", "DeepLIFT rescale rule against the baseline (Shrikumar et al., 2017)", IMAGE,
        passes=lambda s: 2)  # fmt: skip
def deeplift(module: nn.Module, settings: Settings) -> Explain:
    from captum.attr import DeepLift
    from torch import nn

    # DeepLIFT's rules hook the non-linearities: a copy whose activations are not in-place (and whose
    # weights need no gradients)
    module = copy.deepcopy(module).requires_grad_(False)
    for layer in module.modules():
        if isinstance(layer, nn.ReLU | nn.ReLU6 | nn.LeakyReLU | nn.ELU | nn.SiLU) and getattr(layer, "inplace", False):
            layer.inplace = False
    method = DeepLift(module)
    return lambda x, target, baselines: method.attribute(x, baselines=baselines, target=target)


@method("occlusion", "drop in the target logit when a sliding patch is set to the baseline (Zeiler & Fergus)", IMAGE)
def occlusion(module: nn.Module, settings: Settings) -> Explain:
    from captum.attr import Occlusion

    method = Occlusion(module)

    def explain(x: torch.Tensor, target: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
        channels, w, s = x.shape[1], settings.occlusion_window, settings.occlusion_stride
        per_eval = max(1, settings.batch_size // len(x))
        return method.attribute(x, sliding_window_shapes=(channels, w, w), strides=(channels, s, s),
                                baselines=baselines, target=target, perturbations_per_eval=per_eval)  # fmt: skip

    return explain


@method("feature-ablation", "drop in the target logit when one feature is set to the baseline", TABULAR)
def feature_ablation(module: nn.Module, settings: Settings) -> Explain:
    from captum.attr import FeatureAblation

    method = FeatureAblation(module)

    def explain(x: torch.Tensor, target: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
        per_eval = max(1, settings.batch_size // len(x))
        return method.attribute(x, baselines=baselines, target=target, perturbations_per_eval=per_eval)

    return explain


@method("shapley-value-sampling", "Shapley values estimated from random feature orderings (Castro et al., 2009)",
        TABULAR, random=True)  # fmt: skip
def shapley_value_sampling(module: nn.Module, settings: Settings) -> Explain:
    from captum.attr import ShapleyValueSampling

    method = ShapleyValueSampling(module)

    def explain(x: torch.Tensor, target: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
        per_eval = max(1, settings.batch_size // len(x))
        return method.attribute(x, baselines=baselines, target=target, n_samples=settings.shapley_samples,
                                perturbations_per_eval=per_eval)  # fmt: skip

    return explain


@method("layer-integrated-gradients", "integrated gradients on the token embeddings, summed per token (text)",
        ("text",), passes=lambda s: s.ig_steps)  # fmt: skip
def layer_integrated_gradients(module: nn.Module, settings: Settings) -> Explain:
    """``module`` maps token ids to logits and names its embedding layer (``harness.models.text.TokenIds``);
    the baseline replaces the explained tokens by padding."""
    from captum.attr import LayerIntegratedGradients

    method = LayerIntegratedGradients(module, module.embeddings)

    def explain(x: torch.Tensor, target: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
        attributions = method.attribute(x, baselines=baselines, target=target, n_steps=settings.ig_steps,
                                        internal_batch_size=settings.batch_size)  # fmt: skip
        return attributions.sum(-1)

    return explain
