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


def score_histograms(inside: dict[str, np.ndarray], outside: dict[str, dict[str, np.ndarray]],
                     title: str = "") -> bytes:  # fmt: skip
    """One row per detector, one column per OOD set: the in-distribution scores' histogram against the
    set's, on the row's common bins (densities; scores higher for in-distribution)."""
    plt = _pyplot()
    detectors, sets = list(inside), list(outside)
    fig, axes = plt.subplots(len(detectors), len(sets), figsize=(2.6 * len(sets) + 0.8, 1.5 * len(detectors) + 0.7),
                             squeeze=False)  # fmt: skip
    for r, detector in enumerate(detectors):
        values = np.concatenate([inside[detector], *(outside[s][detector] for s in sets)])
        low, high = np.nanpercentile(values, [0.5, 99.5])
        bins = np.linspace(low, high if high > low else low + 1, 40)
        for c, name in enumerate(sets):
            ax = axes[r, c]
            ax.hist(np.clip(inside[detector], low, high), bins=bins, density=True, alpha=0.55, color="#4C72B0",
                    label="in-distribution")  # fmt: skip
            ax.hist(np.clip(outside[name][detector], low, high), bins=bins, density=True, alpha=0.55,
                    color="#C44E52", label="OOD")  # fmt: skip
            ax.set_yticks([])
            ax.tick_params(labelsize=6)
            if c == 0:
                ax.set_ylabel(detector, fontsize=8)
            if r == 0:
                ax.set_title(name, fontsize=8)
    axes[0, -1].legend(fontsize=6, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)


def risk_coverage_curve(confidence: np.ndarray, wrong: np.ndarray, title: str = "") -> bytes:
    """Selective risk against coverage (the examples kept in order of decreasing confidence), with the
    best possible ordering of the same errors for reference."""
    plt = _pyplot()
    n = len(confidence)
    kept = np.arange(1, n + 1)
    risk = np.cumsum(wrong[np.argsort(-confidence, kind="stable")]) / kept
    best = np.cumsum(np.sort(wrong)) / kept
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.plot(kept / n, risk * 100, color="#4C72B0", label="model's confidence")
    ax.plot(kept / n, best * 100, "--", color="#55A868", linewidth=1, label="best ordering (oracle)")
    ax.set_xlabel("coverage (share of examples kept)")
    ax.set_ylabel("selective risk (% errors among kept)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, max(1.0, float(risk.max()) * 100 * 1.05))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)
