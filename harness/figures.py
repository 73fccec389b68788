"""Figures as PNG bytes (matplotlib, headless), for the store, leaderboards and model cards."""

from __future__ import annotations

import io

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    _pyplot().close(fig)
    return buffer.getvalue()


def image_grid(images: np.ndarray, row_labels: list[str], col_labels: list[str] | None = None,
               title: str = "", cell: float = 0.9) -> bytes:  # fmt: skip
    """A grid of images ``[rows, cols, C, H, W]`` in [0, 1] (C is 1 or 3), one labelled row each."""
    plt = _pyplot()
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
    return _png(fig)


def attribution_grid(images: np.ndarray, maps: np.ndarray, row_labels: list[str], methods: list[str],
                     title: str = "", cell: float = 1.0) -> bytes:  # fmt: skip
    """Each example's image (``[rows, C, H, W]`` in [0, 1]) then its attribution map under each method
    (``[rows, methods, H, W]``): red for evidence for the explained class, blue against, each map on
    its own symmetric scale (methods differ in units)."""
    plt = _pyplot()
    rows, cols = maps.shape[0], maps.shape[1] + 1
    fig, axes = plt.subplots(rows, cols, figsize=(cols * cell + 1.4, rows * cell + 0.6), squeeze=False)
    for r in range(rows):
        picture = np.clip(images[r].transpose(1, 2, 0), 0, 1)
        axes[r, 0].imshow(picture[:, :, 0] if picture.shape[2] == 1 else picture, cmap="gray", vmin=0, vmax=1,
                          interpolation="nearest")  # fmt: skip
        axes[r, 0].set_ylabel(row_labels[r], rotation=0, ha="right", va="center", fontsize=8)
        for m in range(maps.shape[1]):
            scale = float(np.nanmax(np.abs(maps[r, m]))) or 1.0
            axes[r, m + 1].imshow(maps[r, m], cmap="bwr", vmin=-scale, vmax=scale, interpolation="nearest")
        for c in range(cols):
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title((["input", *methods])[c], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)


def importance_bars(importance: dict[str, dict[str, float]], title: str = "", top: int = 15) -> bytes:
    """Horizontal bars of each method's mean absolute attribution per feature (``{method: {feature:
    value}}``), the ``top`` features of the first method, largest on top."""
    plt = _pyplot()
    methods = list(importance)
    first = importance[methods[0]]
    features = sorted(first, key=first.get, reverse=True)[:top][::-1]
    fig, axes = plt.subplots(1, len(methods), figsize=(3.6 * len(methods) + 1.2, 0.28 * len(features) + 1.2),
                             squeeze=False, sharey=True)  # fmt: skip
    for ax, name in zip(axes[0], methods, strict=True):
        ax.barh(features, [importance[name][f] for f in features], color="#4C72B0")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("mean |attribution|", fontsize=8)
        ax.tick_params(labelsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)
