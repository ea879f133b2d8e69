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
  ``announcer.engines.managed``, the supervisor the ``sambert`` type uses): the
  declarations above are learnt each time the process becomes ready, and until then
  announcements are spoken by the ``fallback`` engine. Without ``command`` nothing of
  that applies (the supervision keys are refused).
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal
from urllib.parse import urlparse

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ..emotions import EMOTIONS
from ..errors import EngineUnavailable
from .base import Engine, Style

_LOGGER = logging.getLogger(__name__)

DEFAULT_SAMPLE_RATE = 22050
DEFAULT_VOICE = "default"  # shown when the server lists no voices: the request names none
PROBE_TEXT = "."
ANNOUNCER_PROGRAM = "announcer"
STYLE_CONTEXT_KEY = "announcer_style"  # Synthesize.context key announcer servers read
MAX_SENTENCE_CHARS = 200


class ManagedKeys(BaseModel):
    """Keys of an engine whose Wyoming server the daemon may run itself (``announcer.engines.managed``).

    Shared by ``type: sambert`` and ``type: wyoming``. Left out of ``repr`` (and so of the
    cache fingerprint, which a managed engine extends with its ``command`` itself): a plain
    engine's fingerprint stays as it was, and supervision settings do not change the audio.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    command: tuple[str, ...] | None = Field(None, repr=False)  # runs the server; None: started some other way
    fallback: str | None = Field(None, repr=False)  # speaks while this one is not ready; None: the embedded voice
    start_timeout: float = Field(300.0, gt=0, repr=False)  # seconds until it answers describe
    restart_delay: float = Field(1.0, gt=0, repr=False)  # doubled per failed start ...
    restart_max_delay: float = Field(60.0, gt=0, repr=False)  # ... up to this
    stop_timeout: float = Field(10.0, gt=0, repr=False)  # SIGTERM, then SIGKILL after this

    @field_validator("command")
    @classmethod
    def _command(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None and not v:
            raise ValueError("an empty command: give the program and its arguments, or leave command out")
        return v


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
            raise ValueError("only with command: a wyoming engine without one is not supervised and "
                             "does not fall back")
        return v


class WyomingError(EngineUnavailable):
    """A Wyoming server could not be reached or answered with an error; the message names the uri."""


def parse_uri(uri: str) -> tuple[str, Any]:
    """``("tcp", (host, port))`` or ``("unix", path)``; ValueError for anything else."""
    parsed = urlparse(uri)
    if parsed.scheme == "tcp":
        try:
            port = parsed.port
        except ValueError:
            port = None
        if not parsed.hostname or port is None:
            raise ValueError(f"{uri!r}: a tcp uri needs a host and a port (tcp://host:10200)")
        return "tcp", (parsed.hostname, port)
    if parsed.scheme == "unix":
        if not parsed.path:
            raise ValueError(f"{uri!r}: a unix uri needs a path (unix:///run/tts.sock)")
        return "unix", parsed.path
    raise ValueError(f"{uri!r}: only tcp://host:port and unix:///path are supported")


# --- sentences (shared with the server's streaming mode) ------------------------------

# A sentence ends after CJK 。！？ and ；, or after . ! ? ; … followed by white space
# (so "3.14" and "e.g.x" stay whole); closing quotes/brackets stay with it.
_CJK_END = "。！？；…"
_ASCII_END = ".!?;"
_CLOSERS = "”’」』）)】》\"'"
_SENTENCE_RE = re.compile(
    rf"[{_CJK_END}]+[{_CLOSERS}]*|[{_ASCII_END}]+[{_CLOSERS}]*(?=\s)")
_SOFT_BREAKS = "，、,：: "


def cut_long(sentence: str, max_chars: int) -> list[str]:
    """A sentence longer than ``max_chars`` in pieces cut at a comma or space where possible."""
    from ..text.clauses import hard_split

    return [p.strip() for p in hard_split(sentence, max_chars, _SOFT_BREAKS) if p.strip()]


def split_complete(text: str) -> tuple[list[str], str]:
    """Complete sentences at the start of ``text`` and the unfinished rest (streaming input)."""
    sentences: list[str] = []
    start = 0
    for m in _SENTENCE_RE.finditer(text):
        piece = text[start:m.end()].strip()
        start = m.end()
        if piece:
            sentences.append(piece)
    return sentences, text[start:]


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """All sentences of ``text`` (the last may lack final punctuation), long ones cut at commas/spaces."""
    text = " ".join(text.split())
    done, rest = split_complete(text + " ")
    out: list[str] = []
    for s in done + ([rest.strip()] if rest.strip() else []):
        if not re.search(r"\w", s) and out:
            out[-1] += s  # stray punctuation joins the sentence before it
        else:
            out.extend(cut_long(s, max_chars))
    return [s for s in out if re.search(r"\w", s)]


# --- the wire ---------------------------------------------------------------------------


def _connect(uri: str, timeout: float) -> socket.socket:
    kind, address = parse_uri(uri)
    if kind == "tcp":
        return socket.create_connection(address, timeout=timeout)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def request(uri: str, event: Any, last: Callable[[Any], bool], timeout: float) -> Iterator[Any]:
    """Send ``event`` on a new connection; yield the answers up to the one ``last`` accepts.

    Raises WyomingError (uri in the message) on connection problems, a server ``error``
    event, a closed connection or when ``timeout`` seconds pass without finishing.
    """
    from wyoming.error import Error
    from wyoming.event import read_event, write_event

    deadline = time.monotonic() + timeout
    try:
        sock = _connect(uri, timeout)
    except OSError as exc:
        raise WyomingError(f"wyoming server {uri} is unreachable: {exc.strerror or exc}") from None
    with sock, sock.makefile("rwb") as stream:
        try:
            write_event(event, stream)
            while True:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                answer = read_event(stream)
                if answer is None:
                    raise WyomingError(f"wyoming server {uri} closed the connection before answering "
                                       f"{event.type!r} completely")
                if Error.is_type(answer.type):
                    err = Error.from_event(answer)
                    raise WyomingError(f"wyoming server {uri}: {err.text}"
                                       + (f" ({err.code})" if err.code else ""))
                yield answer
                if last(answer):
                    return
        except TimeoutError:
            raise WyomingError(f"wyoming server {uri} did not answer {event.type!r} within {timeout:g} s") from None
        except OSError as exc:
            raise WyomingError(f"wyoming server {uri}: connection failed: {exc.strerror or exc}") from None


def fetch_info(uri: str, timeout: float) -> Any:
    from wyoming.info import Describe, Info

    for answer in request(uri, Describe().event(), lambda e: Info.is_type(e.type), timeout):
        if Info.is_type(answer.type):
            return Info.from_event(answer)
    raise WyomingError(f"wyoming server {uri} sent no info")  # pragma: no cover - request raises first


def synthesize(uri: str, text: str, timeout: float, voice: str | None = None, speaker: str | None = None,
               context: dict[str, Any] | None = None) -> tuple[np.ndarray, int]:
    """One ``synthesize`` round trip: mono float32 samples and the rate of the server's audio-start."""
    from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
    from wyoming.tts import Synthesize, SynthesizeVoice

    wanted = SynthesizeVoice(name=voice, speaker=speaker) if voice else None
    event = Synthesize(text=text, voice=wanted, context=context).event()
    rate: int | None = None
    pcm: list[bytes] = []
    converter: AudioChunkConverter | None = None
    for answer in request(uri, event, lambda e: AudioStop.is_type(e.type), timeout):
        if AudioStart.is_type(answer.type):
            rate = int(AudioStart.from_event(answer).rate)
        elif AudioChunk.is_type(answer.type):
            chunk = AudioChunk.from_event(answer)
            if rate is None:
                rate = int(chunk.rate)
            if converter is None:
                converter = AudioChunkConverter(rate=rate, width=2, channels=1)
            pcm.append(converter.convert(chunk).audio)  # to 16-bit mono at the first rate seen
    samples = np.frombuffer(b"".join(pcm), dtype="<i2").astype(np.float32) / 32768.0
    return samples, rate or DEFAULT_SAMPLE_RATE


# --- the engine ---------------------------------------------------------------------------


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
            raise EngineUnavailable(f"wyoming: engine {self.name}: the server at {uri} has no voice "
                                    f"{self.config.voice!r} (has: {', '.join(self._base_voices())})")
        try:
            _, self._rate = synthesize(uri, PROBE_TEXT, timeout, self._wire_voice(self.default_voice),
                                       self.config.speaker)
        except WyomingError as exc:
            raise EngineUnavailable(f"wyoming: engine {self.name}: probe synthesis failed: {exc}") from None
        _LOGGER.info("wyoming: engine %s uses %s %s at %s (%d voices, %d Hz, emotions: %s)", self.name,
                     self._program, self._program_version, uri, len(voices), self._rate,
                     ", ".join(self.emotions))

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
        return ("neutral",) + tuple(e for e in EMOTIONS if e != "neutral"
                                    and f"{voice}-{e}" in self._voice_languages)

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
        samples, rate = synthesize(self.config.uri, clause, self.config.timeout, voice, self.config.speaker,
                                   context)
        if rate != self._rate and len(samples):
            from ..chain import resample

            samples = resample(samples, rate, self._rate)
        return np.asarray(samples, np.float32)


def ENGINE(name: str, config: Any, cache_dir: Any = None) -> Engine:
    """A plain ``WyomingEngine``, or with ``command`` one whose server the daemon runs and supervises."""
    if config.command:
        from .managed import ManagedWyomingEngine

        return ManagedWyomingEngine(name, config, cache_dir)
    return WyomingEngine(name, config, cache_dir)
