"""Distribution shifts of tabular data, in the task's raw feature space, seeded so that every model
sees the same shifted rows (which keeps comparisons between models paired)."""

from __future__ import annotations

import numpy as np

from harness.tasks.tabular import TabularSchema


def gaussian_noise(inputs: np.ndarray, schema: TabularSchema, stds: np.ndarray, scale: float, seed: int) -> np.ndarray:
    """Add N(0, (scale * std_j)^2) to each numeric feature j; categorical codes and NaNs are unchanged."""
    out = inputs.copy()
    k = len(schema.numeric)
    noise = np.random.default_rng(seed).normal(size=(len(out), k)) * (scale * stds)[None]
    out[:, :k] = out[:, :k] + noise.astype(out.dtype)
    return out


def missing_values(inputs: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """Blank each feature value with probability ``rate`` (NaN: the model's preprocessing fills it)."""
    out = inputs.copy()
    out[np.random.default_rng(seed).random(out.shape) < rate] = np.nan
    return out


def subpopulation_weights(groups: np.ndarray, group: object, share: float) -> np.ndarray:
    """Importance weights that make ``group`` a ``share`` of the data and keep the rest's proportions."""
    member = groups == group
    current = member.mean()
    if current in (0.0, 1.0):
        raise ValueError(f"group {group!r} is {'all' if current else 'none'} of the data; it cannot be reweighted")
    return np.where(member, share / current, (1 - share) / (1 - current))
