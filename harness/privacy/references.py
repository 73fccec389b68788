"""Reference models for the membership attacks that need them (LiRA offline): K networks trained by a
zoo recipe, each on a seeded random half of a population of the task's records that holds none of the
attacked records (neither members nor non-members), so that every reference model is "out" for every
record attacked. Their weights are cached by fingerprint (``$HARNESS_CACHE/reference-models``): the
recipe, the population's records, the half and the seed, and the torch version; a model, its variants
and later runs train them once.

The recipe is the model's own zoo entry (a variant's parent's: the reference models are float models
of the parent's recipe), or the one a suite names with the membership parameter ``reference_recipe``;
a model with neither is not attacked with reference models, and the metric says so."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from harness.files import atomic_write, cache_root

if TYPE_CHECKING:
    from torch import nn

    from harness.models.base import Model
    from harness.tasks.base import Split, Task


def recipe_for(model: Model, task: Task, named: str | None) -> tuple[str | None, str]:
    """The zoo entry whose recipe trains the reference models, or None and the reason there is none."""
    from harness.models.zoo import catalog

    if named is None:
        root = model.name.split("+", 1)[0]
        if not root.startswith("zoo:"):
            return None, (f"{model.name} is not a zoo model: name the reference models' architecture and "
                          "recipe with the membership parameter reference_recipe=<zoo entry>")  # fmt: skip
        named = root.removeprefix("zoo:")
    if named not in catalog():
        return None, f"reference_recipe {named!r} is not a zoo entry; entries: {', '.join(sorted(catalog()))}"
    trained_for = catalog()[named]["task"]
    if trained_for != task.name:
        return None, f"the recipe of zoo:{named} trains on {trained_for!r}, not on the evaluated task {task.name!r}"
    return named, ""


def records_outside(training: Split, members: np.ndarray, pool: Split, non_members: np.ndarray) -> Split:
    """The records the reference models may train on: the training split's but its ``members``
    (positions) and the non-member pool's (the evaluated split, with the held-out validation split
    where it joins) but its ``non_members`` (example ids)."""
    rest_train = np.setdiff1d(np.arange(len(training)), members)
    rest_pool = np.flatnonzero(~np.isin(pool.attributes["index"].to_numpy(), non_members))
    parts = ([training.subset(rest_train)] if len(rest_train) else []) + [pool.subset(rest_pool)]
    return joined(parts, "population")


def joined(parts: list[Split], name: str) -> Split:
    """In-memory splits of one task as one split (the population: records of its training and evaluation
    splits), each record's split in the attribute ``split``; its fingerprint names the parts'."""
    import pandas as pd
    import torch

    from harness.tasks.base import Split, fingerprint_arrays

    attributes = [p.attributes if "split" in p.attributes else p.attributes.assign(split=p.name) for p in parts]
    return Split(
        parts[0].task, name, torch.cat([p.inputs for p in parts]), torch.cat([p.labels for p in parts]),
        pd.concat(attributes, ignore_index=True), fingerprint_arrays(extra="+".join(p.fingerprint for p in parts)),
    )  # fmt: skip


def reference_models(recipe: str, population: Split, k: int, seed: int,
                     progress: Callable[[int, int], None] | None = None) -> list[nn.Module]:  # fmt: skip
    """``k`` networks of zoo entry ``recipe``, the i-th trained on a seeded half of ``population``
    (loaded from the cache where trained before). ``progress(done, k)`` after each."""
    from safetensors.torch import load_file, save_file

    from harness.models.files import load_state
    from harness.models.zoo import build_module, entry
    from harness.models.zoo.train import fit
    from harness.tasks import get_task

    task = get_task(entry(recipe)["task"])
    out = []
    for i in range(k):
        half_seed = seed * 1000 + i
        where = cache_root() / "reference-models" / f"{key(recipe, population, half_seed)}.safetensors"
        module = build_module(recipe, task)
        if where.exists():
            load_state(module, load_file(str(where)), where, f"reference model {i} of zoo:{recipe}")
            module.eval()
        else:
            half = np.sort(np.random.default_rng(half_seed).permutation(len(population))[: len(population) // 2])
            module = fit(recipe, population.subset(half), seed=half_seed)
            try:
                with atomic_write(where) as tmp:
                    save_file({n: t.contiguous() for n, t in module.state_dict().items()}, str(tmp))
            except OSError:  # a read-only cache only costs the next run the training
                pass
        out.append(module)
        if progress:
            progress(i + 1, k)
    return out


def key(recipe: str, population: Split, half_seed: int) -> str:
    import torch

    from harness.models.zoo import entry

    what = {"recipe": entry(recipe), "population": population.fingerprint, "half_seed": half_seed,
            "torch": torch.__version__, "version": 1}  # fmt: skip
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:24]
