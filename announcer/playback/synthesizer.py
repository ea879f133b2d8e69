"""Text to a stream of audio chunks: engine + clause splitting + cache.

``Synthesizer.render`` yields the audio clause by clause, so the first clause can play
while the next one is synthesized: each clause's speech, then its pause as a chunk of
its own. The speech is one chunk from the cache or from an engine that renders clauses
whole, and several from an engine that streams within a clause
(``Engine.synthesize_clause_stream``), passed on as they come (the whole clause is
cached after the last one). The pause is separate so that a clause renders into the same
chunks whether it came from the cache or from a one-piece stream: the speaker chain's
loudness normalisation measures chunk by chunk.
Calls into one engine are serialised with a lock (engines are safe for one caller at a
time; a stream is serialised piece by piece); different engines run in parallel.

Fallback (engines that declare ``ready``, e.g. ``announcer.engines.supervised``): while such
an engine is not ready, or when it fails, the text is spoken by its ``fallback`` engine
(else the first ``embedded-zh`` engine, else a built-in one), resampled to the rate of
the engine asked for; ``SynthStats`` records which engine spoke and a warning, and the
``started`` event carries them (``engine``, ``fallback: true``, ``warnings``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..audio.samples import Audio
from ..config import Config
from ..core.errors import EngineUnavailable, InputError
from ..engines.base import Engine, Style, create_engine, engine_module
from .clause_cache import ClauseCache

_LOGGER = logging.getLogger(__name__)


@dataclass
class SynthStats:
    """Filled in while rendering: for metrics, benchmarks and events."""

    clauses: int = 0
    cached: int = 0
    synth_seconds: float = 0.0
    audio_seconds: float = 0.0
    first_chunk_seconds: float | None = None
    engine: str | None = None  # set when a fallback engine spoke instead of the one asked for
    warnings: list[str] = field(default_factory=list)

    def event_fields(self) -> dict[str, object]:
        """Extra ``started`` event fields: empty unless a fallback engine spoke."""
        if self.engine is None:
            return {}
        return {"engine": self.engine, "fallback": True, "warnings": list(self.warnings)}


def streams_clauses(eng: Engine) -> bool:
    """Whether ``eng`` renders a clause progressively (overrides ``synthesize_clause_stream``).

    Not when a subclass overrides ``synthesize_clause`` below the class that defines the
    stream: such a wrapper (one that counts or alters clauses) keeps seeing every clause.
    """
    mro = type(eng).__mro__

    def owner(method: str) -> int:
        return next(i for i, cls in enumerate(mro) if method in vars(cls))

    return owner("synthesize_clause_stream") < mro.index(Engine) and \
        owner("synthesize_clause_stream") <= owner("synthesize_clause")


# ---- fallback for engines that declare ``ready`` (managed engine processes) ----------------
FALLBACK_ERRORS = (EngineUnavailable, OSError)
BUILTIN_FALLBACK = "embedded-zh"


class Synthesizer:
    def __init__(self, engines: dict[str, Engine], cache: ClauseCache | None = None) -> None:
        self.engines = engines
        self.cache = cache
        self._locks = {name: threading.Lock() for name in engines}
        self._builtin_fallback: Engine | None = None
        self._fallback_lock = threading.Lock()
        self._reference: dict[str, float] = {}

    def with_engines(self, engines: dict[str, Engine], cache: ClauseCache | None) -> Synthesizer:
        """A Synthesizer for a reloaded config: an engine object kept from this one keeps its lock,
        so old and new renders never call into it at the same time."""
        new = Synthesizer(engines, cache)
        for name, eng in engines.items():
            old = next((n for n, e in self.engines.items() if e is eng), None)
            if old is not None:
                new._locks[name] = self._locks.setdefault(old, threading.Lock())
        new._builtin_fallback = self._builtin_fallback
        return new

    def engine(self, name: str) -> Engine:
        try:
            return self.engines[name]
        except KeyError:
            raise InputError("engine", f"unknown engine {name!r} (allowed: {', '.join(self.engines)})") from None

    def check_voice(self, engine_name: str, voice: str | None) -> str:
        eng = self.engine(engine_name)
        if voice is None:
            return eng.default_voice
        if voice not in eng.voices:
            raise InputError("voice", f"unknown voice {voice!r} for engine {engine_name} "
                                      f"(allowed: {', '.join(eng.voices)})")
        return voice

    def fallback_for(self, engine_name: str) -> tuple[str, Engine] | None:
        """Who speaks for ``engine_name`` while it cannot: its ``fallback``, the first embedded-zh, a built-in one."""
        eng = self.engine(engine_name)
        wanted = getattr(eng, "fallback", None)
        if wanted and wanted != engine_name and wanted in self.engines:
            return wanted, self.engines[wanted]
        for name, other in self.engines.items():
            if name != engine_name and other.type_name == BUILTIN_FALLBACK and not hasattr(other, "ready"):
                return name, other
        with self._fallback_lock:
            if self._builtin_fallback is None:
                try:
                    config = engine_module(BUILTIN_FALLBACK).Config(type=BUILTIN_FALLBACK)
                    self._builtin_fallback = create_engine(BUILTIN_FALLBACK, config, eng.cache_dir)
                except Exception:  # noqa: BLE001 - no fallback then; the caller reports the original problem
                    _LOGGER.exception("cannot create the built-in fallback engine")
                    return None
            return BUILTIN_FALLBACK, self._builtin_fallback

    def _fall_back(self, engine_name: str, why: str, stats: SynthStats | None) -> tuple[str, Engine] | None:
        found = self.fallback_for(engine_name)
        if found is None:
            return None
        warning = f"engine {engine_name} {why}; spoken by {found[0]}"
        _LOGGER.warning("%s", warning)
        if stats is not None:
            stats.engine = found[0]
            stats.warnings.append(warning)
        return found

    def render(self, text: str, engine_name: str, style: Style, voice: str | None = None,
               stats: SynthStats | None = None) -> Iterator[Audio]:
        eng = self.engine(engine_name)
        voice = self.check_voice(engine_name, voice)
        speaker_name, speaker = engine_name, eng
        can_fall_back = hasattr(eng, "ready")  # engines that may be down for a while opt in
        if can_fall_back and not eng.ready:  # type: ignore[attr-defined]
            found = self._fall_back(engine_name, "is not ready", stats)
            if found is not None:
                speaker_name, speaker = found
                voice = speaker.default_voice
        try:
            speaker.load()
        except FALLBACK_ERRORS as exc:
            found = self._fall_back(engine_name, f"failed ({exc})", stats) if can_fall_back and speaker is eng else None
            if found is None:
                raise
            speaker_name, speaker = found
            voice = speaker.default_voice
            speaker.load()
        start = time.perf_counter()
        clauses = speaker.clauses(text)
        i = 0
        while i < len(clauses):
            clause = clauses[i]
            resample_to = eng.sample_rate if speaker is not eng and speaker.sample_rate != eng.sample_rate else None
            pieces = self._clause(speaker_name, speaker, clause, style, voice, whole=resample_to is not None)
            yielded = hit = False
            try:
                for samples, hit, seconds in pieces:
                    if stats is not None:
                        stats.synth_seconds += seconds
                    if len(samples) == 0:
                        continue  # nothing to say: the pause alone follows
                    if resample_to is not None:
                        # a fallback's audio at the rate callers expect of ``eng``
                        from ..audio.dsp import resample

                        samples = resample(np.asarray(samples, np.float32), speaker.sample_rate, resample_to)
                    chunk = Audio(np.asarray(samples, np.float32), eng.sample_rate)
                    if stats is not None:
                        stats.audio_seconds += chunk.duration
                        if stats.first_chunk_seconds is None:
                            stats.first_chunk_seconds = time.perf_counter() - start
                    yielded = True
                    yield chunk
            except FALLBACK_ERRORS as exc:
                # a clause already partly played cannot be spoken again by another engine
                found = self._fall_back(engine_name, f"failed ({exc})", stats) \
                    if can_fall_back and speaker is eng and not yielded else None
                if found is None:
                    raise
                speaker_name, speaker = found
                voice = speaker.default_voice
                speaker.load()
                clauses = clauses[:i] + [c for rest in clauses[i:] for c in speaker.clauses(rest)]
                continue
            finally:
                pieces.close()
            if stats is not None:
                stats.clauses += 1
                stats.cached += int(hit)
            pause = speaker.pause_after(clause, style)
            if pause > 0:
                chunk = Audio(np.zeros(int(pause * eng.sample_rate), np.float32), eng.sample_rate)
                if stats is not None:
                    stats.audio_seconds += chunk.duration
                    if stats.first_chunk_seconds is None:
                        stats.first_chunk_seconds = time.perf_counter() - start
                yield chunk
            i += 1

    def _clause(self, name: str, eng: Engine, clause: str, style: Style, voice: str | None,
                whole: bool = False) -> Iterator[tuple[np.ndarray, bool, float]]:
        """One clause's speech from the cache or the engine: ``(samples at eng.sample_rate, cache hit, seconds)``.

        From the cache, or from an engine that renders clauses whole (or with ``whole``):
        one piece. From an engine that streams: its pieces as they come (an empty clause
        yields one empty piece), each step of its stream under the engine's lock, never
        the caller's time in between; the whole clause is cached after the last piece.
        ``seconds`` is the time spent getting that piece. Pieces may be empty.
        """
        t0 = time.perf_counter()
        key = None
        if self.cache is not None:
            key = self.cache.key(eng.fingerprint, voice, style.emotion, style.intensity, style.speed, clause)
            samples = self.cache.get(key)
            if samples is not None:
                yield samples, True, time.perf_counter() - t0
                return
        lock = self._locks.setdefault(name, threading.Lock())
        if whole or not streams_clauses(eng):
            with lock:
                samples = eng.synthesize_clause(clause, style, voice)
            if self.cache is not None and key is not None:
                self.cache.put(key, samples)
            yield samples, False, time.perf_counter() - t0
            return
        stream = eng.synthesize_clause_stream(clause, style, voice)
        done: list[np.ndarray] = []
        try:
            while True:
                with lock:
                    piece = next(stream, None)
                if piece is None:
                    break
                done.append(np.asarray(piece, np.float32))
                yield done[-1], False, time.perf_counter() - t0
                t0 = time.perf_counter()
        finally:
            stream.close()
        if not done:
            yield np.zeros(0, np.float32), False, time.perf_counter() - t0
        if self.cache is not None and key is not None:
            self.cache.put(key, np.concatenate(done) if done else np.zeros(0, np.float32))

    def render_all(self, text: str, engine_name: str, style: Style, voice: str | None = None,
                   stats: SynthStats | None = None) -> Audio:
        rate = self.engine(engine_name).sample_rate
        return Audio.concat(list(self.render(text, engine_name, style, voice, stats)), rate)

    def reference_lufs(self, engine_name: str) -> float | None:
        """Integrated loudness of this engine's neutral voice on a reference sentence.

        Measured once per engine (through the cache, so usually without synthesis) and
        used as the loudness normaliser's starting point: speech declines in level over a
        sentence, so the first piece of a streamed clause alone would mislead it.
        None when the engine cannot render (the normaliser then measures as it goes).
        """
        if engine_name not in self._reference:
            from ..audio.loudness import integrated_loudness

            try:
                audio = self.render_all(REFERENCE_TEXT.get(engine_name, _reference_text(self.engine(engine_name))),
                                        engine_name, Style())
                value = integrated_loudness(audio.samples, audio.sample_rate)
            except Exception as exc:  # an engine that is down: measure on the fly instead
                _LOGGER.debug("no reference loudness for %s: %s", engine_name, exc)
                return None
            if value != value or value == float("-inf"):
                return None
            self._reference[engine_name] = float(value)
        return self._reference[engine_name]


REFERENCE_TEXT: dict[str, str] = {}  # per engine name, to override the language default below


def _reference_text(engine: Engine) -> str:
    langs = [lang.lower() for lang in engine.languages]
    if any(lang.startswith(("zh", "cmn", "yue")) for lang in langs):
        return "各位旅客请注意，开往北京的列车即将进站，请站在安全线以内。"
    return "Attention please. The train to the city centre is now arriving on platform two."


def make_synthesizer(cfg: Config, only: str | None = None) -> Synthesizer:
    engines = {name: create_engine(name, ecfg, cfg.cache.directory)
               for name, ecfg in cfg.engines.items() if only is None or name == only}
    return Synthesizer(engines, ClauseCache.from_config(cfg.cache))
