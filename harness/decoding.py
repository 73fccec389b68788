"""How a model wants image files decoded: its data config (resize, centre crop, interpolation), shared
by the models that declare it and the tasks whose files can be decoded again for them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Decoding(BaseModel):
    """The shorter side resized to ``resize`` then a centre crop to ``size`` (or straight to ``size``
    without ``resize``), with ``interpolation``: timm's evaluation transform from a data config."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    size: tuple[int, int]
    resize: int | None = None
    interpolation: Literal["bilinear", "bicubic"] = "bilinear"
