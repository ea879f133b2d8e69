"""``mqtt`` speaker: the rendered announcement as one WAV, published at QoS 1 to ``<topic>/<id>``."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..audio.samples import to_pcm16
from ..audio.wav import WAV_HEADER_BYTES, wav_header
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
        # the WAV as it grows: a header, then PCM-16 (half of float32), published as it is (no copies)
        self._wav = bytearray(WAV_HEADER_BYTES)

    def write(self, samples: np.ndarray) -> None:
        self._wav += to_pcm16(np.asarray(samples, np.float32)).tobytes()

    def close(self) -> dict[str, Any]:
        publish = self._sink.context.publish
        if publish is None:
            raise SinkError("mqtt speaker needs a broker connection (only available in the daemon)")
        data, self._wav = self._wav, bytearray()
        data[:WAV_HEADER_BYTES] = wav_header(self._rate, (len(data) - WAV_HEADER_BYTES) // 2)
        try:
            publish(self._topic, data, 1, self._sink.config.retain)
        except ValueError as exc:  # the broker's maximum packet size (announcer.mqtt.link.PacketTooLarge)
            raise SinkError(f"cannot publish the WAV to {self._topic}: {exc}") from None
        return {"topic": self._topic, "bytes": len(data)}

    def abort(self) -> None:
        self._wav = bytearray()


class MqttSink(Sink):
    config: Config

    def open(self, announcement_id: str, sample_rate: int) -> Stream:
        return _MqttStream(self, f"{self.config.topic.rstrip('/')}/{announcement_id}", sample_rate)

    def probe(self) -> Reachability:
        return Reachability(None, f"published to {self.config.topic.rstrip('/')}/<id> on the daemon's broker")


SINK = MqttSink
