"""Reference inputs that attributions start from and that deletion replaces features with.

Images: ``black`` (zeros, the absence of signal for images in [0, 1]) or ``blurred`` (the image under
a Gaussian blur, which removes edges but keeps the average colour: a baseline that does not reward
attributing dark pixels). Tabular rows: ``train-mean``, each numeric feature at its training mean and
each categorical feature at its training mode (a mean of category codes is no category).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

    from harness.tasks.base import Task

ImageBaseline = Literal["black", "blurred"]
TabularBaseline = Literal["train-mean"]
BLUR_SIGMA = 3.0  # pixels: on 28 x 28 Fashion-MNIST, enough to remove the garment's edges and texture


def image_baseline(kind: str, inputs: torch.Tensor) -> torch.Tensor:
    import torch
    from torchvision.transforms.functional import gaussian_blur

    if kind == "black":
        return torch.zeros_like(inputs)
    if kind == "blurred":
        size = int(2 * round(3 * BLUR_SIGMA) + 1)
        return gaussian_blur(inputs, kernel_size=[size, size], sigma=[BLUR_SIGMA, BLUR_SIGMA])
    raise ValueError(f"unknown image baseline {kind!r}: expected black or blurred")


def tabular_baseline(task: Task) -> torch.Tensor:
    """One row: training means of the numeric features, training modes of the categorical codes."""
    import torch

    train = task.load("train").inputs.double()
    n_numeric = len(task.schema.numeric)  # type: ignore[attr-defined]
    row = torch.empty(train.shape[1], dtype=torch.float64)
    row[:n_numeric] = train[:, :n_numeric].nanmean(0)
    for j in range(n_numeric, train.shape[1]):
        codes = train[:, j][~torch.isnan(train[:, j])].long()
        row[j] = float(torch.bincount(codes).argmax())
    return row.float()
