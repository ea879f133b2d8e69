"""``embedded-zh`` engine (placeholder module: config only until the engine lands)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["embedded-zh"]
    threads: int = Field(2, ge=1, le=64)
