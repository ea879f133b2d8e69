"""``wyoming`` engine: any Wyoming TTS server (Piper, a Sambert worker, another announcer) as an engine.

Synchronous, one new connection per request (simplest, and it reconnects by itself):
the events are framed with the ``wyoming`` library's blocking ``read_event`` /
``write_event`` over a plain socket, so no event loop is involved.

* ``load`` asks the server to ``describe`` itself (voices, languages) and makes one probe
  synthesis of ``.`` to learn the sample rate from its ``audio-start`` (``describe`` does
  not carry it). An unreachable server raises ``EngineUnavailable`` naming the uri; the
  daemon keeps running and the next announcement tries ``load`` again. Until a load
  succeeds the engine declares 22050 Hz and the configured voice (or ``default``); a
  declaration asked before any load attempt (``say --out`` reads the rate first) makes
  that attempt.
* ``synthesize_clause`` sends one ``synthesize`` per clause (a sentence: the server
  inserts its own pauses) and collects the audio; audio at another rate than the one
  learnt at load is resampled to it, other widths/channel counts are converted.
* Emotions travel by voice name: ``<voice>-<emotion>`` (announcer's own Wyoming server
  lists such voices, see ``announcer.wyoming_server``). They are used when the server's
  TTS program is ``announcer`` or when ``emotion_voices: true``; otherwise the engine
  declares ``neutral`` only. For announcer servers intensity and speed go along in the
  request's ``context`` (``announcer_style``).
* Failures raise ``WyomingError`` (an ``EngineUnavailable``) with the uri in the message.
* With ``command`` the daemon runs the server itself (``ManagedWyomingEngine`` in
  ``announcer.engines.supervised``, the supervisor the ``sambert`` type uses): the
  declarations above are learnt each time the process becomes ready, and until then
  announcements are spoken by the ``fallback`` engine. Without ``command`` nothing of
  that applies (the supervision keys are refused).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from ..audio.dsp import resample
from ..core.emotions import EMOTIONS
from ..core.errors import EngineUnavailable
from ..text.clauses import split_sentences
from .base import Engine, Style
from .supervised import ManagedKeys, SupervisedEngine
from .wyoming_protocol import (
    ANNOUNCER_PROGRAM,
    DEFAULT_SAMPLE_RATE,
    STYLE_CONTEXT_KEY,
    WyomingError,
    fetch_info,
    parse_uri,
    synthesize,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_VOICE = "default"  # shown when the server lists no voices: the request names none
PROBE_TEXT = "."


class Config(ManagedKeys):
    type: Literal["wyoming"]
    uri: str  # tcp://host:port or unix:///path
    voice: str | None = None  # default: the server's first voice
    speaker: str | None = None
    timeout: float = Field(30.0, gt=0, le=600)  # seconds per request (connect, describe, one clause)
    emotion_voices: bool | None = None  # <voice>-<emotion> names; None: only if the server is announcer

    @field_validator("uri")
    @classmethod
    def _uri(cls, v: str) -> str:
        parse_uri(v)
        return v

    @field_validator("fallback", "start_timeout", "restart_delay", "restart_max_delay", "stop_timeout")
    @classmethod
    def _needs_command(cls, v: Any, info: ValidationInfo) -> Any:
        if "command" in info.data and info.data["command"] is None:  # absent when command itself is invalid
            raise ValueError("only with command: a wyoming engine without one is not supervised and does not fall back")
        return v


class WyomingEngine(Engine):
    type_name = "wyoming"

    def __init__(self, name: str, config: Any, cache_dir: Any = None) -> None:
        super().__init__(name, config, cache_dir)
        self._server_voices: tuple[str, ...] = ()
        self._voice_languages: dict[str, tuple[str, ...]] = {}
        self._program = ""
        self._program_version = ""
        self._emotion_voices = False
        self._rate = DEFAULT_SAMPLE_RATE
        self._load_attempted = False

    # --- lifecycle ----------------------------------------------------------------
    def _ensure_described(self) -> None:
        """Declarations asked before any ``load``: try it once, quietly (the daemon loads at start anyway)."""
        if not self._loaded and not self._load_attempted:
            try:
                self.load()
            except EngineUnavailable:
                pass  # declarations stay at their defaults; synthesis raises with the reason

    def _load(self) -> None:
        self._load_attempted = True
        uri, timeout = self.config.uri, self.config.timeout
        try:
            info = fetch_info(uri, timeout)
        except WyomingError as exc:
            raise EngineUnavailable(f"wyoming: engine {self.name}: {exc}") from None
        programs = [p for p in info.tts if p.installed] or list(info.tts)
        if not programs:
            raise EngineUnavailable(f"wyoming: engine {self.name}: the server at {uri} offers no TTS program")
        voices: dict[str, tuple[str, ...]] = {}
        for program in programs:
            for v in program.voices:
                if v.installed and v.name not in voices:
                    voices[v.name] = tuple(v.languages)
        self._program = programs[0].name
        self._program_version = programs[0].version or ""
        self._voice_languages = voices
        self._server_voices = tuple(voices)
        auto = any(p.name == ANNOUNCER_PROGRAM for p in programs)
        self._emotion_voices = auto if self.config.emotion_voices is None else self.config.emotion_voices
        if self.config.voice is not None and voices and self.config.voice not in voices:
            raise EngineUnavailable(
                f"wyoming: engine {self.name}: the server at {uri} has no voice "
                f"{self.config.voice!r} (has: {', '.join(self._base_voices())})"
            )
        try:
            _, self._rate = synthesize(
                uri, PROBE_TEXT, timeout, self._wire_voice(self.default_voice), self.config.speaker
            )
        except WyomingError as exc:
            raise EngineUnavailable(f"wyoming: engine {self.name}: probe synthesis failed: {exc}") from None
        _LOGGER.info(
            "wyoming: engine %s uses %s %s at %s (%d voices, %d Hz, emotions: %s)",
            self.name,
            self._program,
            self._program_version,
            uri,
            len(voices),
            self._rate,
            ", ".join(self.emotions),
        )

    # --- declarations ---------------------------------------------------------------
    def _base_voices(self) -> tuple[str, ...]:
        """The server's voices without the ``<voice>-<emotion>`` variants of a listed voice."""
        names = set(self._server_voices)
        out = []
        for v in self._server_voices:
            base, _, suffix = v.rpartition("-")
            if not (self._emotion_voices and suffix in EMOTIONS and base in names):
                out.append(v)
        return tuple(out)

    @property
    def voices(self) -> tuple[str, ...]:
        self._ensure_described()
        first = self.config.voice
        rest = self._base_voices() if self._server_voices else ()
        if first is None:
            return rest or (DEFAULT_VOICE,)
        return (first,) + tuple(v for v in rest if v != first)

    @property
    def languages(self) -> tuple[str, ...]:
        langs: list[str] = []
        for v in self.voices:
            for lang in self._voice_languages.get(v, ()):
                if lang not in langs:
                    langs.append(lang)
        return tuple(langs) or ("und",)

    @property
    def emotions(self) -> tuple[str, ...]:
        self._ensure_described()
        if not self._emotion_voices:
            return ("neutral",)
        voice = self.default_voice
        return ("neutral",) + tuple(e for e in EMOTIONS if e != "neutral" and f"{voice}-{e}" in self._voice_languages)

    @property
    def emotion_controls(self) -> tuple[str, ...]:
        """The server's emotion voices (``VOICE-EMOTION``) when it has them; whatever they move is its own."""
        return ("voice",) if len(self.emotions) > 1 else ()

    @property
    def sample_rate(self) -> int:
        self._ensure_described()
        return self._rate

    @property
    def fingerprint(self) -> str:
        return f"{self.type_name}:{self._program}:{self._program_version}:{self._rate}:{self.config!r}"

    # --- text and audio ---------------------------------------------------------------
    def clauses(self, text: str) -> list[str]:
        return split_sentences(text)

    def _wire_voice(self, voice: str | None) -> str | None:
        if voice is None or (voice == DEFAULT_VOICE and voice not in self._voice_languages):
            return None
        return voice

    def synthesize_clause(self, clause: str, style: Style, voice: str | None = None) -> np.ndarray:
        self.load()
        voice = self._wire_voice(voice or self.default_voice)
        context = None
        if self._emotion_voices and voice is not None:
            variant = f"{voice}-{style.emotion}"
            if style.emotion != "neutral" and variant in self._voice_languages:
                voice = variant
            if self._program == ANNOUNCER_PROGRAM:
                context = {STYLE_CONTEXT_KEY: {"intensity": style.intensity, "speed": style.speed}}
        samples, rate = synthesize(self.config.uri, clause, self.config.timeout, voice, self.config.speaker, context)
        if rate != self._rate and len(samples):
            samples = resample(samples, rate, self._rate)
        return np.asarray(samples, np.float32)


class ManagedWyomingEngine(SupervisedEngine, WyomingEngine):
    """``type: wyoming`` with a ``command``: the daemon runs the server; see ``announcer.engines.wyoming``.

    The process counts as ready once the server has described itself and the probe
    synthesis gave its rate (``WyomingEngine._load``, repeated at every restart); until the
    first time the engine declares the configured voice (or ``default``), 22050 Hz and
    ``neutral``, never blocking or raising for a declaration.
    """

    def _answers(self) -> bool:
        super()._answers()  # quick: a server still starting is refused at once
        WyomingEngine._load(self)  # voices, languages, emotions, rate
        return True

    def _ensure_described(self) -> None:
        if not self.supervising:  # one-shot: start it (once) to learn the declarations
            super()._ensure_described()

    def _load(self) -> None:
        self._load_attempted = True
        self._start_and_wait("server started by its command")


def ENGINE(name: str, config: Any, cache_dir: Any = None) -> Engine:
    """A plain ``WyomingEngine``, or with ``command`` one whose server the daemon runs and supervises."""
    if config.command:
        return ManagedWyomingEngine(name, config, cache_dir)
    return WyomingEngine(name, config, cache_dir)
