"""The reference zoo's network architectures, each mapping raw task inputs to logits.

Every image network starts with ``Normalize`` so that it takes pixels in [0, 1] (what attacks and
attributions perturb); every tabular network starts with the fitted ``TabularPreprocessor``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from harness.models.tabular import TabularPreprocessor

FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530


class Normalize(nn.Module):
    def __init__(self, mean: float | list[float], std: float | list[float], channels: int = 1) -> None:
        super().__init__()
        self.register_buffer(
            "mean", torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1).expand(channels, 1, 1).clone()
        )
        self.register_buffer(
            "std", torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1).expand(channels, 1, 1).clone()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def linear(num_classes: int, input_shape: tuple[int, ...], **_: Any) -> nn.Module:
    features = int(torch.tensor(input_shape).prod())
    return nn.Sequential(Normalize(FMNIST_MEAN, FMNIST_STD), nn.Flatten(), nn.Linear(features, num_classes))


def mlp(
    num_classes: int, input_shape: tuple[int, ...], hidden: tuple[int, ...] = (256, 128), dropout: float = 0.2, **_: Any
) -> nn.Module:
    layers: list[nn.Module] = [Normalize(FMNIST_MEAN, FMNIST_STD), nn.Flatten()]
    width = int(torch.tensor(input_shape).prod())
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def cnn(num_classes: int, input_shape: tuple[int, ...], **_: Any) -> nn.Module:
    """Two 3x3 conv blocks (32, 64 channels) with max pooling, then a 128-unit dense layer."""
    channels, height, width = input_shape
    return nn.Sequential(
        Normalize(FMNIST_MEAN, FMNIST_STD, channels),
        nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * (height // 4) * (width // 4), 128), nn.ReLU(), nn.Dropout(0.3),
        nn.Linear(128, num_classes),
    )  # fmt: skip


def timm_net(num_classes: int, input_shape: tuple[int, ...], arch: str, **kwargs: Any) -> nn.Module:
    import timm

    body = timm.create_model(arch, pretrained=False, num_classes=num_classes, in_chans=input_shape[0], **kwargs)
    return nn.Sequential(Normalize(FMNIST_MEAN, FMNIST_STD, input_shape[0]), body)


def tabular_linear(num_classes: int, preprocessor: TabularPreprocessor, **_: Any) -> nn.Module:
    return nn.Sequential(preprocessor, nn.Linear(preprocessor.out_features, num_classes))


def tabular_mlp(
    num_classes: int, preprocessor: TabularPreprocessor, hidden: tuple[int, ...] = (64, 32), **_: Any
) -> nn.Module:
    layers: list[nn.Module] = [preprocessor]
    width = preprocessor.out_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "linear": linear,
    "mlp": mlp,
    "cnn": cnn,
    "timm": timm_net,
    "tabular-linear": tabular_linear,
    "tabular-mlp": tabular_mlp,
}
