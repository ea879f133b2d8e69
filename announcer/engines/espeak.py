"""``espeak`` engine (placeholder module: config only until the engine lands)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["espeak"]
    voice: str = "en-us"
