"""An example harness plugin: the ``blobs`` task and the ``centroid:<metric>`` model source.

``harness list`` imports this module to read the descriptions, so torch is imported only where a model
is built (``harness_blobs.model``), as harness does with its own entries: listing stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from harness.registry import RegistryError, unknown_name_message
from harness.tasks.tabular import TabularSchema, TabularTask

if TYPE_CHECKING:
    from harness.models.base import Model
    from harness.tasks.base import Split, Task

CENTRES = np.array([[0.0, 0.0], [3.0, 0.0], [1.5, 2.5]])
SIZES = {"train": 600, "test": 300}


class Blobs(TabularTask):
    """Three Gaussian blobs in two dimensions; group ``b`` is noisier than group ``a``."""

    name = "blobs"
    classes = ("left", "right", "top")
    splits = ("train", "test")
    sensitive = ("group",)
    description = "Three 2-D Gaussian blobs (seeded); rows of group b carry twice the noise of group a."
    license = "CC0-1.0"

    @property
    def schema(self) -> TabularSchema:  # type: ignore[override]
        return TabularSchema(("x", "y"), {})

    def _load(self, split: str) -> Split:
        rng = np.random.default_rng(0 if split == "train" else 1)
        n = SIZES[split]
        labels = rng.integers(0, 3, n)
        group = rng.choice(["a", "b"], n, p=[0.7, 0.3])
        noise = np.where(group == "a", 0.8, 1.6)[:, None]
        points = CENTRES[labels] + rng.normal(size=(n, 2)) * noise
        frame = pd.DataFrame(points, columns=["x", "y"])
        return self.split_from_frame(split, frame, labels, pd.DataFrame({"group": group}))


class CentroidSource:
    metrics: ClassVar[dict[str, float]] = {"euclidean": 2.0, "manhattan": 1.0}

    def catalog(self) -> list[tuple[str, str]]:
        return [(f"centroid:{m}", f"nearest centroid ({m}), fitted on the task's train split") for m in self.metrics]

    def check(self, arg: str, task: Task, **options: Any) -> None:
        from harness.models.base import IncompatibleError

        if arg not in self.metrics:
            raise RegistryError(unknown_name_message("centroid metric", arg, list(self.metrics)))
        if task.modality != "tabular" or "train" not in task.splits:
            raise IncompatibleError(f"centroid:{arg} fits tabular tasks with a train split; {task.name} is not one")

    def load(self, arg: str, task: Task, checkpoint: str | None = None, **options: Any) -> Model:
        import torch

        from harness.models.base import Model
        from harness_blobs.model import NearestCentroid

        self.check(arg, task)
        train = task.load("train")
        x = torch.nan_to_num(train.inputs)
        centroids = torch.stack([x[train.labels == k].mean(0) for k in range(task.num_classes)])
        info = {"source": "harness-blobs example plugin", "training_data": f"{task.name} train split",
                "license": "CC0-1.0"}  # fmt: skip
        return Model(f"centroid:{arg}", NearestCentroid(centroids, self.metrics[arg]), "tabular",
                     config={"source": "centroid", "metric": arg}, info=info)  # fmt: skip
