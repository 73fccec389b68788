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

    def determined_by(self, arg: str, checkpoint: str | None = None, **options: Any) -> list[Path] | None:
        """A checkpoint determines the model; without one it is drawn at random or fetched from the hub."""
        return [Path(checkpoint).expanduser()] if checkpoint else None

    def check(self, arg: str, task: Task, **options: Any) -> None:
        from harness.models.base import IncompatibleError

        known = architectures()
        if arg.split(".", 1)[0] not in set(known):  # a pretrained tag after '.' is allowed, as timm allows it
            import timm  # the authority: it also knows deprecated aliases, which it does not list

            if not timm.is_model(arg):
                raise RegistryError(unknown_name_message("timm architecture", arg, known))
        if task.modality != "image":
            raise IncompatibleError(f"timm:{arg} is an image model; task {task.name!r} is {task.modality}")

    def load(self, arg: str, task: Task, checkpoint: str | None = None, **options: Any) -> Model:
        from harness.hub import before_hub_access, offline

        if options.get("pretrained") and not checkpoint:
            before_hub_access()
        import timm
        from timm.data import resolve_data_config

        from harness.decoding import Decoding
        from harness.models.base import IncompatibleError, Model, ModelLoadError
        from harness.models.preprocess import ImageInput, per_channel

        self.check(arg, task)
        name = f"timm:{arg}"
        mean, std = options.pop("mean", None), options.pop("std", None)
        hub = bool(options.get("pretrained")) and not checkpoint
        channels = task.input_shape[0]
        if hub:  # the model as published: its classes, channels and input size (resized inside the module)
            kwargs: dict[str, Any] = dict(options)
        else:  # sized for the task: random, or a checkpoint trained on it (loaded strictly, head and stem)
            kwargs = dict(num_classes=task.num_classes, in_chans=channels, **options)
        if checkpoint:
            path = Path(checkpoint)
            if not path.is_file():
                raise ModelLoadError(f"{name}: checkpoint {path} does not exist")
            overlay = dict(file=str(path), num_classes=task.num_classes, input_size=tuple(task.input_shape))
            kwargs.update(pretrained=True, pretrained_cfg_overlay=overlay)
        try:
            body = timm.create_model(arg, **kwargs)
        except (RuntimeError, ValueError, KeyError, OSError, EOFError) as exc:
            where = f" from {checkpoint}" if checkpoint else " from the Hugging Face hub" if hub else ""
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            hint = " (HF_HUB_OFFLINE=1 is set: only cached weights load)" if hub and offline() else ""
            raise ModelLoadError(f"{name}: could not build the model{where}: {first}{hint}") from exc
        except Exception as exc:  # torch.load(weights_only=True) raises UnpicklingError and kin
            if not checkpoint:
                raise
            raise ModelLoadError(
                f"{name}: {checkpoint} is not a tensor file that can be loaded safely ({type(exc).__name__})"
            ) from exc
        if body.num_classes != task.num_classes:
            raise IncompatibleError(
                f"{name} predicts {body.num_classes} classes; task {task.name!r} has {task.num_classes}"
            )
        cfg = body.pretrained_cfg
        data = resolve_data_config({}, model=body)
        model_channels = data["input_size"][0] if hub else channels  # sized for the task: in_chans=channels
        mean = mean if mean is not None else per_channel(data["mean"], model_channels)
        std = std if std is not None else per_channel(data["std"], model_channels)
        size, resize = None, None
        if hub:
            size = tuple(data["input_size"][1:])
            if data.get("crop_mode", "center") == "center":
                resize = round(min(size) / data.get("crop_pct", 1.0))
        decoding = None  # image files are decoded for the published model as timm's evaluation transform does
        if hub and size is not None and data["interpolation"] in ("bilinear", "bicubic"):
            decoding = Decoding(size=size, resize=resize, interpolation=data["interpolation"])
        preprocess = ImageInput(size, mean, std, model_channels, resize=resize, interpolation=data["interpolation"],
                                decoded=decoding is not None)  # fmt: skip
        module = torch_sequential(preprocess, body)
        config = {"source": "timm", "arch": arg, "options": options, "mean": mean, "std": std, "size": size,
                  "resize": resize, "interpolation": data["interpolation"]}  # fmt: skip
        weights = f"checkpoint {checkpoint}" if checkpoint else cfg.get("hf_hub_id") or "hub" if hub else None
        info = {
            "source": f"timm {timm.__version__}: {arg}",
            "weights": weights or "random initialisation",
            "license": cfg.get("license", "unknown"),
            "revision": cfg.get("tag") or "unknown",
            "input": f"{data['input_size']}, {data['interpolation']}, crop {data.get('crop_pct')}",
        }
        return Model(name, module, "image", config=config, info=info, decoding=decoding)


def architectures() -> list[str]:
    """timm's listed architecture names, kept once per timm version under ``$HARNESS_CACHE`` (importing
    timm takes seconds; a warm plan need not)."""
    from importlib.metadata import version

    from harness.files import cache_root, read_cached, write_cached

    where = cache_root() / f"timm-{version('timm')}-architectures.json"
    names = read_cached(where)
    if not isinstance(names, list):
        import timm

        names = timm.list_models()
        write_cached(where, names)
    return names


def torch_sequential(*modules: Any) -> Any:
    import torch

    return torch.nn.Sequential(*modules)
