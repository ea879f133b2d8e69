"""``sambert`` engine: ModelScope's Sambert-HiFiGAN multi-emotion Chinese voices, served by the
Sambert worker (``announcer/workers/sambert.py``, its own Python 3.10 environment) over Wyoming.

The worker is a supervised process when ``command`` is given (``announcer.engines.supervised``):
while it is not ready, announcements for this engine are spoken by its ``fallback``. Emotions
travel as ``<voice>-<emotion>`` voice names, intensity and speed in the request's context.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from ..audio.dsp import resample
from ..core.emotions import EMOTIONS
from ..core.errors import EngineUnavailable
from ..text.clauses import split_sentences
from .base import Style
from .supervised import ManagedKeys, SupervisedEngine
from .wyoming_protocol import STYLE_CONTEXT_KEY, WyomingError, fetch_info, parse_uri, synthesize

SAMBERT_VOICES: tuple[str, ...] = ("zhitian_emo", "zhiyan_emo", "zhizhe_emo", "zhibei_emo")


class Config(ManagedKeys):
    """``engines.x: {type: sambert, uri, command: [...], fallback: zh, voice: zhitian_emo}``."""

    type: Literal["sambert"]
    uri: str = "tcp://127.0.0.1:10201"
    voice: str = "zhitian_emo"
    sample_rate: int = Field(16000, ge=8000, le=48000)
    timeout: float = Field(60.0, gt=0, le=600)  # seconds per request
    # start_timeout (ManagedKeys) defaults to 300 s: loading torch and the model takes a while

    @field_validator("uri")
    @classmethod
    def _uri(cls, v: str) -> str:
        parse_uri(v)
        return v

    @field_validator("voice")
    @classmethod
    def _voice(cls, v: str) -> str:
        if v not in SAMBERT_VOICES:
            raise ValueError(f"unknown voice {v!r} (allowed: {', '.join(SAMBERT_VOICES)})")
        return v


class SambertEngine(SupervisedEngine):
    """A Wyoming engine for the Sambert worker: voices and emotions declared, no probe needed."""

    type_name = "sambert"

    # --- declarations ---------------------------------------------------------------
    @property
    def languages(self) -> tuple[str, ...]:
        return ("zh",)

    @property
    def voices(self) -> tuple[str, ...]:
        return (self.config.voice,) + tuple(v for v in SAMBERT_VOICES if v != self.config.voice)

    @property
    def emotions(self) -> tuple[str, ...]:
        return EMOTIONS

    @property
    def emotion_controls(self) -> tuple[str, ...]:
        return ("voice",)  # Sambert's emotional voices

    @property
    def sample_rate(self) -> int:
        rate: int = self.config.sample_rate
        return rate

    # --- lifecycle ----------------------------------------------------------------
    def _load(self) -> None:
        """One-shot use: start the worker (when there is a command) and wait until it answers."""
        if self.supervisor is not None:
            self._start_and_wait("worker", " (see docs/sambert.md)")
            return
        try:
            fetch_info(self.config.uri, self.config.timeout)
        except WyomingError as exc:
            raise EngineUnavailable(
                f"sambert: engine {self.name}: {exc} (start the worker, or give "
                f"engines.{self.name}.command; see docs/sambert.md)"
            ) from None

    # --- text and audio ---------------------------------------------------------------
    def clauses(self, text: str) -> list[str]:
        return split_sentences(text)

    def synthesize_clause(self, clause: str, style: Style, voice: str | None = None) -> np.ndarray:
        voice = voice or self.config.voice
        wire = voice if style.emotion == "neutral" else f"{voice}-{style.emotion}"
        context = {STYLE_CONTEXT_KEY: {"intensity": style.intensity, "speed": style.speed}}
        samples, rate = synthesize(self.config.uri, clause, self.config.timeout, wire, None, context)
        if rate != self.sample_rate and len(samples):
            samples = resample(samples, rate, self.sample_rate)
        return np.asarray(samples, np.float32)


ENGINE = SambertEngine
