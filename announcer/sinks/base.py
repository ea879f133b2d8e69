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

A stream that hands audio to a player of its own (an RTP speaker's jitter buffer, Snapcast's
buffer, a Home Assistant media player) may return from ``close`` before that audio has been
heard: it sets ``playing_until`` (monotonic) and the player waits until then, checking for
an interruption as it does between writes, then calls ``played`` (e.g. give the Snapcast
groups back their music) or, interrupted, ``abort``. A sink that sets the volume on the
remote player (``remote_volume``) gets the announcement's gain through ``set_volume`` and
full-scale samples.

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
    # (data, content type, seconds) -> (URL a media player can fetch it from, revoke()); set while
    # the HTTP server runs (announcer.http.handouts), None otherwise
    offer: Callable[[bytes, str, float], tuple[str, Callable[[], None]]] | None = None
    homeassistant_url: str | None = None  # homeassistant.url / homeassistant.token, for its speakers
    homeassistant_token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reachability:
    """What ``announcer speakers`` says of a speaker: reachable (None: cannot be told) and how."""

    reachable: bool | None
    detail: str


class Stream(ABC):
    """One announcement being played on one sink."""

    # May stay open after an interruption for the next announcement to ``resume`` in it.
    resumable: bool = False
    # set by close() when what was handed over is still being played elsewhere (see the module doc)
    playing_until: float | None = None

    @abstractmethod
    def write(self, samples: np.ndarray) -> None: ...

    @abstractmethod
    def close(self) -> dict[str, Any]:
        """Finish playing everything written; return details for the ``finished`` event."""

    @abstractmethod
    def abort(self) -> None:
        """Stop as soon as possible (announcement interrupted or cancelled)."""

    def played(self) -> None:
        """After ``close``: everything has been heard (``playing_until`` passed)."""
        return None

    def set_volume(self, gain: float) -> None:
        """The announcement's gain (0..1), before the first write, on ``remote_volume`` sinks."""
        return None

    def resume(self, announcement_id: str, sample_rate: int) -> bool:
        """Play the next announcement in this (``resumable``, interrupted) stream, right after what
        was written; False when it cannot (another rate): the caller aborts it and opens anew."""
        return False


class Sink(ABC):
    # the volume is set on the remote player (``Stream.set_volume``), the samples come at full scale
    remote_volume: bool = False

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

    def probe(self) -> Reachability:
        """Whether the speaker can be reached now (``announcer speakers``); quick, no sound."""
        return Reachability(None, "not checked")

    def session_description(self) -> str | None:
        """An SDP description of the speaker's stream, for speakers that send RTP."""
        return None


SINK_MODULES: dict[str, str] = {
    "sounddevice": "announcer.sinks.sounddevice_sink",
    "file": "announcer.sinks.file_sink",
    "mqtt": "announcer.sinks.mqtt_sink",
    "rtp": "announcer.sinks.rtp_sink",
    "snapcast": "announcer.sinks.snapcast_sink",
    "homeassistant": "announcer.sinks.homeassistant_sink",
}


def create_sink(name: str, config: Any, context: SinkContext | None = None) -> Sink:
    module = importlib.import_module(SINK_MODULES[config.type])
    sink: Sink = module.SINK(name, config, context)
    return sink
