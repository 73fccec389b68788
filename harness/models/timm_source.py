"""``timm:<arch>``: any timm architecture, sized for the task, random or from a checkpoint file.

A checkpoint goes through timm's own loader (``pretrained_cfg_overlay=dict(file=...)``), which reads
safetensors directly and anything else with ``torch.load(weights_only=True)``; the overlay also sets
the task's class count and input size so that timm loads the head and the stem unchanged (strictly)
instead of dropping or adapting them as it does for ImageNet weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.registry import RegistryError, models, unknown_name_message

if TYPE_CHECKING:
    from harness.models.base import Model
    from harness.tasks.base import Task


@models.register("timm", "any timm architecture, sized for the task: timm:<arch> [--checkpoint FILE]")
class TimmSource:
    def catalog(self) -> list[tuple[str, str]]:
        return []

    def check(self, arg: str, task: Task) -> None:
        import timm

        from harness.models.base import IncompatibleError

        if not timm.is_model(arg):
            raise RegistryError(unknown_name_message("timm architecture", arg, timm.list_models()))
        if task.modality != "image":
            raise IncompatibleError(f"timm:{arg} is an image model; task {task.name!r} is {task.modality}")

    def load(self, arg: str, task: Task, checkpoint: str | None = None, **options: Any) -> Model:
        import timm
        import torch

        from harness.models.architectures import Normalize
        from harness.models.base import Model, ModelLoadError

        self.check(arg, task)
        mean, std = options.pop("mean", None), options.pop("std", None)
        kwargs: dict[str, Any] = dict(num_classes=task.num_classes, in_chans=task.input_shape[0], **options)
        if checkpoint:
            path = Path(checkpoint)
            if not path.is_file():
                raise ModelLoadError(f"timm:{arg}: checkpoint {path} does not exist")
            overlay = dict(file=str(path), num_classes=task.num_classes, input_size=tuple(task.input_shape))
            kwargs.update(pretrained=True, pretrained_cfg_overlay=overlay)
        try:
            body = timm.create_model(arg, **kwargs)
        except (RuntimeError, ValueError, KeyError, OSError, EOFError) as exc:
            where = f" from {checkpoint}" if checkpoint else ""
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"timm:{arg}: could not build the model{where}: {first}") from exc
        except Exception as exc:  # torch.load(weights_only=True) raises UnpicklingError and kin
            if not checkpoint:
                raise
            raise ModelLoadError(
                f"timm:{arg}: {checkpoint} is not a tensor file that can be loaded safely ({type(exc).__name__})"
            ) from exc
        channels = task.input_shape[0]
        cfg = body.pretrained_cfg
        mean = mean if mean is not None else _per_channel(cfg.get("mean", (0.5,)), channels)
        std = std if std is not None else _per_channel(cfg.get("std", (0.5,)), channels)
        module = torch.nn.Sequential(Normalize(mean, std, channels), body)
        config = {"source": "timm", "arch": arg, "options": options, "mean": mean, "std": std}
        info = {
            "source": f"timm {timm.__version__}: {arg}",
            "weights": f"checkpoint {checkpoint}" if checkpoint else "random initialisation",
            "license": cfg.get("license", "unknown"),
        }
        return Model(f"timm:{arg}", module, "image", config=config, info=info)


def _per_channel(values: tuple[float, ...] | list[float], channels: int) -> list[float]:
    values = list(values)
    if len(values) == channels:
        return values
    return [sum(values) / len(values)] * channels
