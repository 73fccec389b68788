"""Scores of explanation quality, one value per explained example.

A *feature* is what an explanation ranks: a pixel (its channels together) for images, a column for
tabular rows. Attributions are summed over channels to score a pixel; "removing" a feature sets it
(all its channels) to the baseline.

- Deletion and insertion AUC (Petsiuk et al., 2018, RISE): remove (or add, starting from the baseline)
  features in the order of attribution, most positive first, in ``steps`` equal steps; the area under
  the model's probability of the explained class over the fraction removed (added), by the trapezoid
  rule on [0, 1]. Deletion: lower is better; insertion: higher is better.
- Faithfulness correlation (Bhatt et al., 2020): over ``runs`` random subsets of features of a fixed
  size, the Pearson correlation between the attribution the subset carries and the drop of the
  explained class's logit when the subset is set to the baseline (the logit, as Quantus does: a
  probability saturates). Higher is better.
- Sparseness (Chalasani et al., 2020): the Gini index of the features' absolute attributions, 0 for
  a flat explanation, towards 1 when a few features carry it all. Higher reads more easily.
- Model-parameter randomisation (Adebayo et al., 2018): layers with parameters are re-initialised
  from the top (output) down, cumulatively; at each step, the Spearman rank correlation between the
  attributions of the trained and of the randomised model, over the features where the input differs
  from the baseline (where it does not, methods that multiply by input minus baseline give 0 whatever
  the weights, and on Fashion-MNIST's black background those ties alone would make any two
  explanations agree). Signed, because the sign is what the weights decide (evidence for or against
  the class); Adebayo's absolute-value variant is kept beside it, but it measures in part how unusual
  each input value is, the same for any weights: it fails an exact explanation of a logistic
  regression. An explanation that still ranks the features alike once every weight is random does
  not explain the model.

Ties in an attribution order are broken at random (seeded), so a flat explanation scores as a random
one would rather than as the pixel order would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import nn

Forward = Callable[["torch.Tensor"], np.ndarray]  # inputs -> one score of the explained class per row


def feature_scores(attributions: torch.Tensor) -> np.ndarray:
    """``[N, F]``: per-pixel sums over channels for images ``[N, C, H, W]``, columns for rows ``[N, F]``."""
    a = attributions.detach().float().cpu()
    if a.ndim == 4:
        a = a.sum(1)
    return a.reshape(len(a), -1).numpy()


def _expand(mask: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """A feature mask ``[N, F]`` as a boolean tensor that broadcasts over ``like``'s channels."""
    import torch

    m = torch.from_numpy(mask).to(like.device)
    if like.ndim == 4:
        return m.reshape(len(like), 1, *like.shape[2:])
    return m.reshape(like.shape)


def ranks(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Position of each feature in the order of attribution (0 = most positive), ties at random."""
    order = np.lexsort((rng.random(scores.shape), -scores), axis=1)
    positions = np.empty_like(order)
    np.put_along_axis(positions, order, np.arange(scores.shape[1])[None].repeat(len(scores), 0), axis=1)
    return positions


def deletion_insertion(probability: Forward, inputs: torch.Tensor, baselines: torch.Tensor, scores: np.ndarray,
                       *, steps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Deletion and insertion AUC per example (see the module docstring)."""
    import torch

    positions = ranks(scores, rng)
    features = scores.shape[1]
    fractions = np.linspace(0, 1, steps + 1)
    deleted, inserted = np.empty((steps + 1, len(scores))), np.empty((steps + 1, len(scores)))
    for k, fraction in enumerate(fractions):
        mask = _expand(positions < round(fraction * features), inputs)
        deleted[k] = probability(torch.where(mask, baselines, inputs))
        inserted[k] = probability(torch.where(mask, inputs, baselines))
    width = np.diff(fractions)[:, None]
    return ((deleted[1:] + deleted[:-1]) / 2 * width).sum(0), ((inserted[1:] + inserted[:-1]) / 2 * width).sum(0)


def faithfulness_correlation(logit: Forward, inputs: torch.Tensor, baselines: torch.Tensor, scores: np.ndarray,
                             *, subset: int, runs: int, rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """Per example: Pearson correlation, over ``runs`` random subsets of ``subset`` features, of the
    attribution the subset carries and the logit's drop when it is set to the baseline; NaN where
    either is constant (an explanation that gives every subset the same mass)."""
    import torch

    n, features = scores.shape
    reference = logit(inputs)
    mass, drop = np.empty((runs, n)), np.empty((runs, n))
    for r in range(runs):
        chosen = np.argsort(rng.random((n, features)), axis=1)[:, :subset]
        mask = np.zeros((n, features), dtype=bool)
        np.put_along_axis(mask, chosen, True, axis=1)
        drop[r] = reference - logit(torch.where(_expand(mask, inputs), baselines, inputs))
        mass[r] = (scores * mask).sum(1)
    return pearson_columns(mass, drop)


def pearson_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column of ``a`` with the same column of ``b``; NaN where constant."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    denominator = np.sqrt((a * a).sum(0) * (b * b).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 1e-12 * max(1.0, float(np.abs(denominator).max(initial=0))),
                        (a * b).sum(0) / denominator, np.nan)  # fmt: skip


def sparseness(scores: np.ndarray) -> np.ndarray:
    """Gini index of each row's absolute values; NaN for an all-zero row."""
    a = np.sort(np.abs(scores), axis=1)
    n = a.shape[1]
    weights = 2 * np.arange(1, n + 1) - n - 1
    total = a.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (a * weights).sum(1) / (n * total), np.nan)


def spearman_rows(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """Spearman rank correlation of each row of ``a`` with the same row of ``b`` (ties averaged),
    over the entries ``where`` is true (all by default); NaN for a row with fewer than 3."""
    from scipy.stats import rankdata

    where = np.ones(a.shape, dtype=bool) if where is None else where
    out = np.full(len(a), np.nan)
    for i in range(len(a)):
        if where[i].sum() >= 3:
            ranked = np.stack([rankdata(a[i][where[i]]), rankdata(b[i][where[i]])], axis=1)
            out[i] = pearson_columns(ranked[:, :1], ranked[:, 1:])[0]
    return out


def differs(inputs: torch.Tensor, baselines: torch.Tensor) -> np.ndarray:
    """``[N, F]``: the features (pixels, any channel) where the input differs from the baseline."""
    changed = (inputs != baselines).detach().cpu()
    if changed.ndim == 4:
        changed = changed.any(1)
    return changed.reshape(len(changed), -1).numpy()


def parameter_layers(module: nn.Module) -> list[nn.Module]:
    """Modules that hold parameters themselves, in definition order (input to output)."""
    return [m for m in module.modules() if any(True for _ in m.parameters(recurse=False))]


def randomised_cascade(module: nn.Module, steps: int, seed: int) -> Iterator[tuple[str, nn.Module]]:
    """Copies of ``module`` with its top layers re-initialised, cumulatively from the output down, in
    ``steps`` steps (fewer when it has fewer layers); yields ``(label, model)`` with label
    ``top-k/L``. Layers re-initialise as they would before training (``reset_parameters``), others
    from a normal of their parameters' spread."""
    import copy

    import torch

    randomised = copy.deepcopy(module)
    layers = parameter_layers(randomised)[::-1]
    cuts = sorted({max(1, round(len(layers) * (k + 1) / steps)) for k in range(steps)})
    done = 0
    for cut in cuts:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed + cut)
            for layer in layers[done:cut]:
                if hasattr(layer, "reset_parameters"):
                    layer.reset_parameters()
                else:
                    for p in layer.parameters(recurse=False):
                        p.normal_(0.0, float(p.std()) if p.numel() > 1 else 0.02)
        done = cut
        yield f"top-{cut}/{len(layers)}", randomised
