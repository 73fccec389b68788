"""``hf:<repo-id-or-local-dir>``: a transformers image classifier (with its image processor) or
sequence classifier (with its tokenizer), from the hub or a folder that ``save_pretrained`` wrote.

Options: ``revision`` (a branch, tag or commit to pin), ``trust_remote_code`` (off unless the user
passes ``--trust-remote-code``), ``max_length`` (tokens, text). The model's label names are matched
to the task's classes: the same names in another order are reordered, other names are refused.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.hub import offline
from harness.registry import models

if TYPE_CHECKING:
    import torch

    from harness.models.base import Model
    from harness.tasks.base import Task

GENERIC = "LABEL_"  # transformers' placeholder label names: LABEL_0, LABEL_1, ...


@functools.cache  # said once per process, however often the config is read
def announce_remote_code(arg: str, revision: str | None) -> None:
    """Say what code ``trust_remote_code`` will run, before it runs: the folder's Python files with their
    hashes and the classes its config maps, or the hub repository and revision they come from."""
    import hashlib
    import json
    import logging

    folder = Path(arg).expanduser()
    if folder.is_dir():
        try:
            auto_map = json.loads((folder / "config.json").read_text()).get("auto_map") or {}
        except (OSError, ValueError, AttributeError):
            auto_map = {}
        files = [f"{f.name} (sha256 {hashlib.sha256(f.read_bytes()).hexdigest()[:12]})"
                 for f in sorted(folder.glob("*.py"))]  # fmt: skip
        what = f"the code in {folder}: {', '.join(files) or 'no .py file'}; auto_map {auto_map or 'none'}"
    else:
        what = f"the Python files of the hub repository {arg} at revision {revision or 'main (unpinned)'}"
    logging.getLogger("harness").warning("hf:%s: --trust-remote-code runs %s", arg, what)


def load_config(arg: str, revision: str | None, trust_remote_code: bool) -> Any:
    from harness.hub import before_hub_access

    if not Path(arg).expanduser().is_dir():
        before_hub_access()
    if trust_remote_code:
        announce_remote_code(arg, revision)
    from transformers import AutoConfig

    from harness.models.base import ModelLoadError

    try:
        return AutoConfig.from_pretrained(arg, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0]
        if "trust_remote_code" in str(exc):
            raise ModelLoadError(
                f"hf:{arg} runs code from its repository; review it, then pass --trust-remote-code ({first})"
            ) from None
        if Path(arg).expanduser().is_dir():
            raise ModelLoadError(f"hf:{arg}: the folder holds no transformers model config.json ({first})") from None
        hint = (
            "HF_HUB_OFFLINE=1 is set, so only models in the cache or on disk load: run once online, or pass "
            "a folder that save_pretrained wrote (hf:<dir>)"
            if offline()
            else "check the repository id on https://huggingface.co, or pass a local folder (hf:<dir>)"
        )
        raise ModelLoadError(f"hf:{arg} could not be loaded: {first.rstrip('.')}. {hint}") from None


def kind_of(config: Any) -> str | None:
    """``image`` or ``text``: which transformers classification head the architecture has."""
    from transformers.models.auto import modeling_auto as auto

    if config.model_type in auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES:
        return "image"
    if config.model_type in auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES:
        return "text"
    return None


def label_order(config: Any, task: Task, name: str) -> list[int] | None:
    """Indices that put the model's logits in the task's class order; None when they already are."""
    from harness.models.base import IncompatibleError

    labels = [str(config.id2label[i]) for i in range(config.num_labels)]
    if len(labels) != task.num_classes:
        raise IncompatibleError(
            f"{name} predicts {len(labels)} classes ({', '.join(labels[:5])}...); task {task.name!r} has "
            f"{task.num_classes}"
        )
    if all(label.startswith(GENERIC) for label in labels):
        return None  # unnamed labels: taken to be in the task's order
    lower = {label.lower(): i for i, label in enumerate(labels)}
    wanted = [c.lower() for c in task.classes]
    if set(wanted) != set(lower):
        raise IncompatibleError(
            f"{name}'s labels {labels[:10]} are not the classes of task {task.name!r} {list(task.classes)[:10]}"
        )
    order = [lower[c] for c in wanted]
    return None if order == list(range(len(order))) else order


def image_input(processor: Any, channels: int) -> torch.nn.Module:
    """The image processor's steps as an ``ImageInput`` (resize, centre crop, normalise)."""
    from harness.models.preprocess import ImageInput, per_channel

    size = dict(getattr(processor, "size", None) or {})
    crop = dict(getattr(processor, "crop_size", None) or {}) if getattr(processor, "do_center_crop", False) else {}
    resample = {0: "nearest", 2: "bilinear", 3: "bicubic"}.get(int(getattr(processor, "resample", 2) or 2), "bilinear")
    mean = per_channel(getattr(processor, "image_mean", None) or [0.5], channels)
    std = per_channel(getattr(processor, "image_std", None) or [0.5], channels)
    if not getattr(processor, "do_normalize", True):
        mean, std = [0.0] * channels, [1.0] * channels
    if "shortest_edge" in size:
        final = (crop["height"], crop["width"]) if crop else None
        return ImageInput(final, mean, std, channels, resize=int(size["shortest_edge"]), interpolation=resample)
    target = (crop["height"], crop["width"]) if crop else (size.get("height"), size.get("width"))
    return ImageInput(target if all(target) else None, mean, std, channels, interpolation=resample)


@models.register("hf", "a transformers image or text classifier: hf:<repo-id-or-dir> [revision, trust_remote_code]")
class HFSource:
    def catalog(self) -> list[tuple[str, str]]:
        return []

    def canonical(self, arg: str) -> str:
        from harness.models import absolute_if_path

        return absolute_if_path(arg)

    def check(
        self, arg: str, task: Task, revision: str | None = None, trust_remote_code: bool = False, **_: Any
    ) -> None:
        from harness.models.base import IncompatibleError

        kind = kind_of(load_config(arg, revision, trust_remote_code))
        if kind is None:
            raise IncompatibleError(f"hf:{arg} is neither an image nor a sequence classification model")
        if kind != task.modality:
            article = "an" if kind == "image" else "a"
            raise IncompatibleError(f"hf:{arg} is {article} {kind} classifier; task {task.name!r} is {task.modality}")

    def load(
        self,
        arg: str,
        task: Task,
        checkpoint: str | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
        max_length: int = 256,
        **options: Any,
    ) -> Model:
        import transformers

        from harness.models.base import Model, ModelLoadError
        from harness.models.preprocess import PixelValues, Reorder

        if checkpoint:
            raise ModelLoadError(f"hf:{arg}: the weights come from the repository; --checkpoint is not used here")
        self.check(arg, task, revision, trust_remote_code)
        transformers.utils.logging.disable_progress_bar()  # harness shows its own progress
        config = load_config(arg, revision, trust_remote_code)
        name = f"hf:{arg}"
        order = label_order(config, task, name)
        kwargs = dict(revision=revision, trust_remote_code=trust_remote_code, **options)
        try:
            if task.modality == "image":
                body = transformers.AutoModelForImageClassification.from_pretrained(arg, **kwargs)
                processor = transformers.AutoImageProcessor.from_pretrained(arg, **kwargs)
                channels = int(getattr(config, "num_channels", 3))
                module = PixelValues(body, image_input(processor, channels))
            else:
                from harness.models.text import TextClassifier

                body = transformers.AutoModelForSequenceClassification.from_pretrained(arg, **kwargs)
                tokenizer = transformers.AutoTokenizer.from_pretrained(arg, **kwargs)
                module = TextClassifier(body, tokenizer, max_length)
        except (OSError, ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise ModelLoadError(f"{name}: could not load the model or its preprocessing: {first}") from None
        if order is not None:
            module = Reorder(module, order)
        commit = getattr(config, "_commit_hash", None)
        info = {
            "source": f"transformers {transformers.__version__}: {arg}",
            "revision": revision or commit or "local files",
            "architecture": (config.architectures or [type(body).__name__])[0],
            "license": _license(arg, revision),
            "labels": [str(config.id2label[i]) for i in range(config.num_labels)],
        }
        model_config = {"source": "hf", "repo": arg, "revision": revision or commit, "options": options,
                        "max_length": max_length if task.modality == "text" else None}  # fmt: skip
        return Model(name, module, task.modality, config=model_config, info=info)


def _license(arg: str, revision: str | None) -> str:
    """The license the model card declares (README.md front matter), if it can be read without network."""
    from huggingface_hub import ModelCard

    folder = Path(arg).expanduser()
    try:
        card = ModelCard.load(folder / "README.md") if folder.is_dir() else (None if offline() else ModelCard.load(arg))
    except Exception:  # no card, no network: the license stays unknown, not guessed
        return "unknown"
    return str(getattr(card.data, "license", None) or "unknown") if card else "unknown"
