"""The speaker (sink) contract and the registry of speaker types.

A sink plays one announcement at a time as a stream: ``open`` it for an announcement,
``write`` float32 mono chunks as they are synthesized (devices block at real time),
then ``close`` it (drains and completes) or ``abort`` it (stops now, with a short
fade where the medium allows). A ``resumable`` stream (a device) interrupted by a more
urgent announcement is neither: it stays open, playing out the fade-out written last,
and the next announcement goes on in it (``resume``), with no gap and no re-open. Each
sink's calls run on one thread of their own, one at a time (``announcer.playback.sink_guard``: the
player waits for each with a deadline, so a call that never returns fails the announcement
instead of hanging the speaker).

Each sink module declares a pydantic ``Config`` (with a ``type`` literal) and
``SINK`` (the class). Settings every speaker shares live in ``SpeakerBase``.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

DEFAULT_STALL_TIMEOUT = 10.0  # seconds; see SpeakerBase.stall_timeout


class SpeakerBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None  # display name, any language
    volume: float = Field(1.0, ge=0, le=1)
    # an emergency never plays below volume * emergency_volume, whatever the master volume,
    # quiet hours or the announcement's own volume say (announcer.playback.speaker_chain)
    emergency_volume: float = Field(0.8, ge=0, le=1)
    lead_in_ms: int = Field(150, ge=0, le=5000)
    # a call into the sink (a device write) that takes this long beyond the audio it carries
    # fails the announcement: the device stopped taking samples (announcer.playback.sink_guard)
    stall_timeout: float = Field(DEFAULT_STALL_TIMEOUT, gt=0, le=600)


class SinkError(RuntimeError):
    """A speaker could not play (device missing, disk full, broker gone); the message says which."""


@dataclass
class SinkContext:
    """What a sink may need from the daemon, passed in (a test seam, not a global)."""

    publish: Callable[[str, bytes | bytearray, int, bool], Any] | None = None  # (topic, payload, qos, retain)
    extra: dict[str, Any] = field(default_factory=dict)


class Stream(ABC):
    """One announcement being played on one sink."""

    # May stay open after an interruption for the next announcement to ``resume`` in it.
    resumable: bool = False

    @abstractmethod
    def write(self, samples: np.ndarray) -> None: ...

    @abstractmethod
    def close(self) -> dict[str, Any]:
        """Finish playing everything written; return details for the ``finished`` event."""

    @abstractmethod
    def abort(self) -> None:
        """Stop as soon as possible (announcement interrupted or cancelled)."""

    def resume(self, announcement_id: str, sample_rate: int) -> bool:
        """Play the next announcement in this (``resumable``, interrupted) stream, right after what
        was written; False when it cannot (another rate): the caller aborts it and opens anew."""
        return False


class Sink(ABC):
    def __init__(self, name: str, config: Any, context: SinkContext | None = None) -> None:
        self.name = name
        self.config = config
        self.context = context or SinkContext()

    def preferred_rate(self, source_rate: int) -> int:
        """The sample rate this sink wants for audio rendered at ``source_rate``."""
        return source_rate

    @abstractmethod
    def open(self, announcement_id: str, sample_rate: int) -> Stream: ...

    def close(self) -> None:
        return None


SINK_MODULES: dict[str, str] = {
    "sounddevice": "announcer.sinks.sounddevice_sink",
    "file": "announcer.sinks.file_sink",
    "mqtt": "announcer.sinks.mqtt_sink",
}


def create_sink(name: str, config: Any, context: SinkContext | None = None) -> Sink:
    module = importlib.import_module(SINK_MODULES[config.type])
    sink: Sink = module.SINK(name, config, context)
    return sink
