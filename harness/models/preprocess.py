"""Input adapters that live inside a model's ``module``: the task's raw images in [0, 1] become what
the network was trained on (channels, size, crop, normalisation), differentiably, so attacks,
corruptions and attributions still act on the images a person sees."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from harness.models.architectures import Normalize

MODES = {"bilinear": "bilinear", "bicubic": "bicubic", "nearest": "nearest", "area": "area"}


class ImageInput(nn.Module):
    """Grey to RGB (when the network reads 3 channels), resize (the shorter side to ``resize`` then a
    centre crop to ``size``, or straight to ``size``), then normalise by ``mean`` and ``std``. With
    ``decoded``, images already of ``size`` are not resized: they were decoded from their files for this
    network (its ``Decoding``), and a second resize and crop would zoom in on them."""

    def __init__(
        self,
        size: tuple[int, int] | None,
        mean: list[float],
        std: list[float],
        channels: int,
        resize: int | None = None,
        interpolation: str = "bilinear",
        decoded: bool = False,
    ) -> None:
        super().__init__()
        self.size, self.resize, self.channels = (tuple(size) if size else None), resize, channels
        self.decoded = decoded
        self.mode = MODES.get(interpolation, "bilinear")
        self.normalize = Normalize(mean, std, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1 and self.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        if self.decoded and tuple(x.shape[-2:]) == self.size:
            return self.normalize(x)
        if self.resize is not None:
            h, w = x.shape[-2:]
            scale = self.resize / min(h, w)
            x = self._interpolate(x, (max(1, round(h * scale)), max(1, round(w * scale))))
            if self.size is not None:
                top, left = (x.shape[-2] - self.size[0]) // 2, (x.shape[-1] - self.size[1]) // 2
                x = x[..., top : top + self.size[0], left : left + self.size[1]]
        elif self.size is not None:
            x = self._interpolate(x, self.size)
        return self.normalize(x)

    def _interpolate(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        smooth = self.mode in ("bilinear", "bicubic")
        kwargs = {"align_corners": False, "antialias": True} if smooth else {}
        return F.interpolate(x, size=size, mode=self.mode, **kwargs)


def per_channel(values: list[float] | tuple[float, ...], channels: int) -> list[float]:
    values = [float(v) for v in values]
    return values if len(values) == channels else [sum(values) / len(values)] * channels


class Reorder(nn.Module):
    """Logits put in the task's class order (a model that names the same classes in another order)."""

    def __init__(self, body: nn.Module, order: list[int]) -> None:
        super().__init__()
        self.body = body
        self.register_buffer("order", torch.as_tensor(order, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).index_select(1, self.order)


class PixelValues(nn.Module):
    """A transformers image classifier behind its preprocessing: raw [0, 1] images -> logits."""

    def __init__(self, model: nn.Module, preprocess: nn.Module) -> None:
        super().__init__()
        self.preprocess, self.model = preprocess, model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=self.preprocess(x)).logits
