"""``sounddevice`` speaker: a PortAudio output device chosen by name substring or index."""

from __future__ import annotations

from typing import Literal

from .base import SpeakerBase


class Config(SpeakerBase):
    type: Literal["sounddevice"]
    device: str | int | None = None  # None: PortAudio's default output
    latency: Literal["low", "high"] | float = "low"
