"""``torch:<file>`` (a TorchScript file) or ``torch:<module>:<Class> --checkpoint FILE`` (a class the
user's code defines, built with the ``options`` as keyword arguments, and its weights from a
safetensors file or a state dict read with ``torch.load(weights_only=True)``).

Nothing here unpickles arbitrary objects: a whole pickled ``nn.Module`` is refused with the way to
save it instead. Naming ``torch:my_pkg:Net`` imports ``my_pkg`` as Python's ``import`` would (its
top-level code runs: the user named it as code), then calls nothing unless ``Net`` is a class deriving
from ``torch.nn.Module``: ``torch:os:system`` or ``torch:subprocess:Popen`` are refused before any
call. The module receives the task's raw inputs (images in [0, 1]) and returns logits.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.registry import models

if TYPE_CHECKING:
    import torch

    from harness.models.base import Model
    from harness.tasks.base import Task

STATE_KEYS = ("state_dict", "model_state_dict", "model", "weights")  # where trainers nest the weights


def read_state(path: Path, name: str) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, or of a ``torch.save``d state dict read with weights_only."""
    import pickle

    import torch

    from harness.models.base import ModelLoadError
    from harness.models.files import read_safetensors

    if path.suffix == ".safetensors":
        return read_safetensors(path, name)[0]
    if not path.is_file():
        raise ModelLoadError(f"{name}: checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"{name}: {path} is not a state dict that can be loaded safely (weights_only=True: {first}). "
            "Save the weights with torch.save(model.state_dict(), ...) or safetensors."
        ) from None
    for key in STATE_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{name}: {path} holds a {type(state).__name__}, not a state dict of tensors")
    return state


def file_digest(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def source_digest(cls: type) -> str:
    """The hash of the source file that defines ``cls``: editing the user's model code changes the
    model's fingerprint, as retraining its weights does."""
    import inspect

    try:
        return file_digest(Path(inspect.getfile(cls)))
    except (TypeError, OSError):  # defined where there is no file (a notebook): its qualified name only
        return f"{cls.__module__}.{cls.__qualname__}"


def working_directory_importable() -> None:
    """Let ``torch:mynets:Net`` import ``mynets.py`` from the working directory, as ``python -m`` and
    pytest do (the ``harness`` script alone would not): appended, so installed packages win."""
    import os
    import sys

    here = os.getcwd()
    if "" not in sys.path and here not in sys.path:
        sys.path.append(here)


def import_class(spec: str, name: str) -> type:
    """The ``nn.Module`` subclass ``spec`` (``module:Class``) names, checked to be one before anything
    calls it: a function, a builtin or any other class is refused."""
    import inspect

    from torch import nn

    from harness.models.base import ModelLoadError

    module_name, _, class_name = spec.rpartition(":")
    working_directory_importable()
    try:
        found = importlib.import_module(module_name)
        for part in class_name.split("."):  # a nested class: module:Outer.Inner
            found = getattr(found, part)
    except ModuleNotFoundError as exc:
        raise ModelLoadError(
            f"{name}: cannot import module {module_name!r} ({exc}) from the working directory or PYTHONPATH"
        ) from None
    except AttributeError:
        raise ModelLoadError(f"{name}: module {module_name!r} has no {class_name!r}") from None
    if not (inspect.isclass(found) and issubclass(found, nn.Module)):
        what = "a class not derived from torch.nn.Module" if inspect.isclass(found) else f"a {type(found).__name__}"
        raise ModelLoadError(
            f"{name}: {module_name}.{class_name} is {what}; torch:<module>:<Class> names a torch.nn.Module subclass, "
            "which is built with the model options (nothing else is called)"
        )
    return found


@models.register("torch", "a TorchScript file torch:<file>, or torch:<module>:<Class> --checkpoint FILE")
class TorchSource:
    def catalog(self) -> list[tuple[str, str]]:
        return []

    def canonical(self, arg: str) -> str:
        from harness.models import absolute_if_path

        return arg if ":" in arg else absolute_if_path(arg)

    def determined_by(self, arg: str, checkpoint: str | None = None, **options: Any) -> list[Path] | None:
        """A TorchScript file; a class's source file and its checkpoint (without one it is drawn at random)."""
        if ":" not in arg:
            return [Path(arg).expanduser()]
        if not checkpoint:
            return None
        working_directory_importable()
        try:
            spec = importlib.util.find_spec(arg.rpartition(":")[0])
        except (ImportError, ValueError):
            return None
        return [Path(spec.origin), Path(checkpoint).expanduser()] if spec and spec.origin else None

    def check(self, arg: str, task: Task, **options: Any) -> None:
        from harness.models.base import ModelLoadError

        if ":" not in arg and not Path(arg).expanduser().is_file():
            raise ModelLoadError(
                f"torch:{arg}: no such TorchScript file; name a file (torch:model.pt) or a class "
                "(torch:package.module:Class --checkpoint weights.safetensors)"
            )
        if ":" in arg:  # imported and checked to be an nn.Module subclass, not called: a plan builds nothing
            import_class(arg, f"torch:{arg}")

    def load(self, arg: str, task: Task, checkpoint: str | None = None, **options: Any) -> Model:
        import torch

        from harness.models.base import Model, ModelLoadError
        from harness.models.files import load_state

        self.check(arg, task)
        name = f"torch:{arg}"
        if ":" not in arg:  # TorchScript: code and tensors in a zip, no pickled Python objects
            if checkpoint or options:
                raise ModelLoadError(f"{name}: a TorchScript file holds its weights and settings; drop them")
            try:
                module = torch.jit.load(str(Path(arg).expanduser()), map_location="cpu")
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[0]
                raise ModelLoadError(
                    f"{name} is not a TorchScript file ({first}). A pickled nn.Module cannot be loaded safely: "
                    "export it with torch.jit.script(model).save(...), or save its state dict and name the "
                    "class: torch:package.module:Class --checkpoint weights.safetensors"
                ) from None
            info = {"source": f"TorchScript file {Path(arg).name}", "weights": "in the TorchScript file"}
            code = file_digest(Path(arg).expanduser())  # the file holds the code as well as the weights
            return Model(name, module, task.modality, config={"source": "torchscript", "file": code}, info=info)
        cls = import_class(arg, name)
        try:
            module = cls(**options)
        except TypeError as exc:
            raise ModelLoadError(f"{name}: {cls.__name__}({options}) failed: {exc}") from None
        if checkpoint:
            path = Path(checkpoint).expanduser()
            load_state(module, read_state(path, name), path, name)
        info = {"source": f"{arg} ({cls.__module__})", "weights": checkpoint or "random initialisation"}
        config = {"source": "torch", "class": arg, "options": options, "code": source_digest(cls)}
        return Model(name, module, task.modality, config=config, info=info)
