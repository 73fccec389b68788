"""Loading weights from files a user hands us: safetensors first, pickles only as plain tensors."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from harness.models.base import ModelLoadError


def read_safetensors(path: Path, model: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a safetensors file, with a clear error for anything else."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise ModelLoadError(f"{model}: weights file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            state = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118 (safe_open has no iterator)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{model}: {path} is not a readable safetensors file ({exc})") from exc
    return state, metadata


def load_safetensors(module: nn.Module, path: Path, model: str) -> dict[str, str]:
    """Load ``path`` into ``module`` (strict) and return the file's metadata."""
    state, metadata = read_safetensors(path, model)
    load_state(module, state, path, model)
    return metadata


def load_state(module: nn.Module, state: dict[str, torch.Tensor], path: Path, model: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(
            f"{model}: the weights in {path} do not fit the architecture: {misfit(module.state_dict(), state)}. "
            "Is it a checkpoint of another model?"
        ) from exc


def misfit(wanted: dict[str, torch.Tensor], found: dict[str, torch.Tensor], shown: int = 3) -> str:
    """Which keys of a state dict differ from the model's: missing, unexpected, of another shape (the
    first ``shown`` of each)."""

    def some(keys: list[str]) -> str:
        return ", ".join(keys[:shown]) + (f" and {len(keys) - shown} more" if len(keys) > shown else "")

    missing = [k for k in wanted if k not in found]
    unexpected = [k for k in found if k not in wanted]
    shapes = [f"{k} is {list(found[k].shape)} in the file, {list(wanted[k].shape)} in the model"
              for k in wanted if k in found and tuple(found[k].shape) != tuple(wanted[k].shape)]  # fmt: skip
    parts = [f"{len(missing)} missing ({some(missing)})" if missing else "",
             f"{len(unexpected)} unexpected ({some(unexpected)})" if unexpected else "",
             f"{len(shapes)} of another shape ({some(shapes)})" if shapes else ""]  # fmt: skip
    return "; ".join(p for p in parts if p) or "the tensors do not load"
