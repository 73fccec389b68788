"""The reproducible recipes that train the reference zoo (``harness zoo train``).

One loop serves every entry: Adam with a cosine learning-rate schedule, seeded shuffling, and the
entry's options: PGD adversarial training, corruption augmentation, or reweighing for fairness.
Given the same seed, data, torch version and thread count, a recipe gives the same weights.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from harness.models.zoo import build_module, entry
from harness.tasks import get_task
from harness.tasks.base import Split

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    name: str
    path: Path
    test_accuracy: float
    seconds: float
    extra: dict[str, float]


def pgd_linf(
    module: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int, step_size: float
) -> torch.Tensor:
    """Projected gradient ascent on the loss in the Linf ball, from a uniform random start."""
    delta = torch.empty_like(x).uniform_(-eps, eps)
    delta = ((x + delta).clamp(0, 1) - x).requires_grad_(True)
    for _ in range(steps):
        loss = F.cross_entropy(module(x + delta), y)
        (grad,) = torch.autograd.grad(loss, delta)
        delta = (delta + step_size * grad.sign()).clamp(-eps, eps)
        delta = ((x + delta).clamp(0, 1) - x).detach().requires_grad_(True)
    return (x + delta).detach()


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, size: int = 11) -> torch.Tensor:
    """Blur each image of a batch with its own sigma (one grouped convolution)."""
    n, c, h, w = x.shape
    r = torch.arange(size, dtype=x.dtype) - size // 2
    k1 = torch.exp(-(r[None] ** 2) / (2 * sigma[:, None] ** 2))
    k1 = k1 / k1.sum(1, keepdim=True)
    kernel = (k1[:, :, None] * k1[:, None, :]).repeat_interleave(c, 0)[:, None]
    out = F.conv2d(F.pad(x.reshape(1, n * c, h, w), [size // 2] * 4, mode="reflect"), kernel, groups=n * c)
    return out.reshape(n, c, h, w)


def corrupt(x: torch.Tensor, probability: float, noise_std: list[float], blur_sigma: list[float]) -> torch.Tensor:
    """Corruption augmentation: a share ``probability`` of the batch gets Gaussian noise or blur."""
    r = torch.rand(x.shape[0])
    noisy, blurred = r < probability / 2, (r >= probability / 2) & (r < probability)
    out = x.clone()
    if noisy.any():
        std = torch.empty(int(noisy.sum())).uniform_(*noise_std)
        out[noisy] = (x[noisy] + torch.randn_like(x[noisy]) * std[:, None, None, None]).clamp(0, 1)
    if blurred.any():
        out[blurred] = gaussian_blur(x[blurred], torch.empty(int(blurred.sum())).uniform_(*blur_sigma))
    return out


def reweighing(labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Kamiran and Calders (2012): weight P(group) P(label) / P(group, label), so that the weighted
    data has the label independent of the group."""
    weights = np.empty(len(labels), dtype=np.float64)
    for g in np.unique(groups):
        for y in np.unique(labels):
            cell = (groups == g) & (labels == y)
            if cell.any():
                weights[cell] = (groups == g).mean() * (labels == y).mean() / cell.mean()
    return weights


def accuracy(module: nn.Module, split: Split, batch_size: int = 1000) -> float:
    module.eval()
    correct = 0
    with torch.inference_mode():
        for inputs, rows in split.batches(batch_size):
            correct += int((module(inputs).argmax(1) == split.labels[rows]).sum())
    return correct / len(split)


def robust_accuracy(module: nn.Module, split: Split, eps: float, n: int = 1000, steps: int = 20) -> float:
    """PGD-20 robust accuracy on the first ``n`` test examples: a training-time check that adversarial
    training did not collapse (catastrophic overfitting). The robustness suite measures it properly."""
    module.eval()
    x, y = split.inputs[:n], split.labels[:n]
    adv = torch.cat([pgd_linf(module, x[i : i + 250], y[i : i + 250], eps, steps, eps / 4) for i in range(0, n, 250)])
    with torch.inference_mode():
        return float((module(adv).argmax(1) == y).float().mean())


def fit(
    name: str,
    train_split: Split,
    *,
    epochs: int | None = None,
    seed: int | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> nn.Module:
    """A fresh network of zoo entry ``name`` trained by its recipe on ``train_split`` (any split of its
    task: the shipped weights train on ``train``, the privacy metric's reference models on halves of
    a population), in eval mode. ``seed`` replaces the recipe's (initialisation and shuffling)."""
    spec = entry(name)
    recipe: dict[str, Any] = spec["recipe"]
    task = get_task(spec["task"])
    epochs = epochs or recipe["epochs"]
    seed = recipe["seed"] if seed is None else seed
    torch.manual_seed(seed)
    module = build_module(name, task)
    if task.modality == "tabular":
        module[0].fit(train_split.inputs)
    weights = torch.ones(len(train_split), dtype=torch.float64)
    if group := recipe.get("reweigh"):
        w = reweighing(train_split.labels.numpy(), train_split.attributes[group].to_numpy())
        weights = torch.from_numpy(w)

    batch_size = recipe["batch_size"]
    steps_per_epoch = math.ceil(len(train_split) / batch_size)
    total = epochs * steps_per_epoch
    optimizer = torch.optim.Adam(module.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe["lr"], total_steps=total, pct_start=0.15)
    generator = torch.Generator().manual_seed(seed)
    adversarial, augment = recipe.get("adversarial"), recipe.get("augment")
    step = 0
    for epoch in range(epochs):
        order = torch.randperm(len(train_split), generator=generator)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            x, y, w = train_split.inputs[idx], train_split.labels[idx], weights[idx].float()
            if augment:
                x = corrupt(x, augment["probability"], augment["noise_std"], augment["blur_sigma"])
            if adversarial:
                module.eval()
                x = pgd_linf(module, x, y, adversarial["eps"], adversarial["steps"], adversarial["step_size"])
            module.train()
            loss = (F.cross_entropy(module(x), y, reduction="none") * w).sum() / w.sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if on_step:
                on_step(step, total)
        log.info("%s epoch %d/%d loss %.4f", name, epoch + 1, epochs, loss.item())
    return module.eval()


def train(
    name: str,
    out_dir: Path,
    *,
    epochs: int | None = None,
    limit: int | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train zoo model ``name`` by its recipe and write ``out_dir/name.safetensors``.

    ``epochs`` and ``limit`` (train on a seeded subset) shorten the recipe for tests; the shipped
    weights use neither. ``on_step(done, total)`` reports progress in optimiser steps.
    """
    from safetensors.torch import save_file

    spec = entry(name)
    recipe: dict[str, Any] = spec["recipe"]
    task = get_task(spec["task"])
    train_split, test_split = task.load("train"), task.load("test")
    if limit is not None and limit < len(train_split):
        train_split = train_split.subset(
            np.sort(np.random.default_rng(recipe["seed"]).permutation(len(train_split))[:limit])
        )
    epochs = epochs or recipe["epochs"]
    started = time.perf_counter()
    module = fit(name, train_split, epochs=epochs, on_step=on_step)
    adversarial = recipe.get("adversarial")

    seconds = time.perf_counter() - started
    test_accuracy = accuracy(module, test_split)
    extra = {}
    if adversarial:
        extra["pgd20_accuracy_first1000"] = robust_accuracy(module, test_split, adversarial["eps"])
    training = {
        "training_data": f"{task.name} train split ({len(train_split)} examples)",
        "epochs": epochs,
        "test_accuracy_at_training": round(test_accuracy, 4),
        "train_seconds": round(seconds, 1),
        "train_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        **{k: round(v, 4) for k, v in extra.items()},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.safetensors"
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    state = {k: v.contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(tmp), metadata={"name": name, "training": json.dumps(training)})
    tmp.replace(path)
    return TrainResult(name, path, test_accuracy, seconds, extra)
