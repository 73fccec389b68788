"""Figures as PNG bytes (matplotlib, headless), for the store, leaderboards and model cards."""

from __future__ import annotations

import io

import numpy as np


def image_grid(images: np.ndarray, row_labels: list[str], col_labels: list[str] | None = None,
               title: str = "", cell: float = 0.9) -> bytes:  # fmt: skip
    """A grid of images ``[rows, cols, C, H, W]`` in [0, 1] (C is 1 or 3), one labelled row each."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows, cols = images.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(cols * cell + 1.4, rows * cell + 0.5), squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            picture = np.clip(images[r, c].transpose(1, 2, 0), 0, 1)
            if picture.shape[2] == 1:
                ax.imshow(picture[:, :, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.imshow(picture, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(row_labels[r], rotation=0, ha="right", va="center", fontsize=8)
            if r == 0 and col_labels:
                ax.set_title(col_labels[c], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
