"""``mqtt`` speaker: the rendered announcement as one WAV, published at QoS 1 to ``<topic>/<id>``."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..audio import Audio, wav_bytes
from .base import Reachability, Sink, SinkError, SpeakerBase, Stream


class Config(SpeakerBase):
    type: Literal["mqtt"]
    topic: str = Field(pattern=r"^[^#+\s]+$")
    retain: bool = False
    lead_in_ms: int = Field(0, ge=0, le=5000)


class _MqttStream(Stream):
    def __init__(self, sink: MqttSink, topic: str, sample_rate: int) -> None:
        self._sink = sink
        self._topic = topic
        self._rate = sample_rate
        self._parts: list[np.ndarray] = []

    def write(self, samples: np.ndarray) -> None:
        self._parts.append(np.asarray(samples, np.float32))

    def close(self) -> dict[str, Any]:
        publish = self._sink.context.publish
        if publish is None:
            raise SinkError("mqtt speaker needs a broker connection (only available in the daemon)")
        audio = Audio(np.concatenate(self._parts) if self._parts else np.zeros(0, np.float32), self._rate)
        data = wav_bytes(audio)
        publish(self._topic, data, 1, self._sink.config.retain)
        return {"topic": self._topic, "bytes": len(data)}

    def abort(self) -> None:
        self._parts.clear()


class MqttSink(Sink):
    config: Config

    def open(self, announcement_id: str, sample_rate: int) -> Stream:
        return _MqttStream(self, f"{self.config.topic.rstrip('/')}/{announcement_id}", sample_rate)

    def probe(self) -> Reachability:
        return Reachability(None, f"published to {self.config.topic.rstrip('/')}/<id> on the daemon's broker")


SINK = MqttSink
