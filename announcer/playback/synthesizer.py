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

An announcement's pieces (``render_pieces``): speech as above, and recorded clips
(``announcer.audio.clips``) as one chunk each at the same rate, carrying their measured
loudness so the speaker chain normalises them as a whole. An announcement that is only
clips needs no engine: it renders at its first clip's own rate (``pieces_rate``).

Fallback (engines that ``may_fall_back``: supervised ones): each is wrapped once in a
``FallbackEngine`` (``announcer.engines.fallback``) that names who speaks a render; a
fallback's audio is resampled to the rate of the engine asked for, and ``SynthStats``
records which engine spoke and the warning, which the ``started`` event carries
(``engine``, ``fallback: true``, ``warnings``).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..audio.clips import ClipLibrary
from ..audio.dsp import resample
from ..audio.samples import Audio
from ..config import Config
from ..core.announcement import CLIP, SAY, Translation
from ..core.errors import InputError
from ..engines.base import Engine, Speaker, Style, create_engine
from ..engines.fallback import FALLBACK_ERRORS, BuiltinFallback, FallbackEngine, choose_fallback
from .clause_cache import ClauseCache

_LOGGER = logging.getLogger(__name__)

PART_GAP = 0.5  # seconds of silence between the parts of a bilingual announcement


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

    def counted(self, chunk: Audio, start: float) -> Audio:
        """Count ``chunk`` in (audio seconds, time to the first chunk since ``start``); returns it."""
        self.audio_seconds += chunk.duration
        if self.first_chunk_seconds is None:
            self.first_chunk_seconds = time.perf_counter() - start
        return chunk

    def event_fields(self) -> dict[str, Any]:
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

    return owner("synthesize_clause_stream") < mro.index(Engine) and owner("synthesize_clause_stream") <= owner(
        "synthesize_clause"
    )


class Synthesizer:
    def __init__(
        self,
        engines: dict[str, Engine],
        cache: ClauseCache | None = None,
        builtin_fallback: BuiltinFallback | None = None,
        clips: ClipLibrary | None = None,
    ) -> None:
        self.engines = engines
        self.cache = cache
        self.clips = clips or ClipLibrary()
        self._locks = {name: threading.Lock() for name in engines}
        self._builtin = builtin_fallback or BuiltinFallback()
        # what renders for each engine name: the engine itself, or (may_fall_back) its FallbackEngine
        self._speaking: dict[str, Engine] = {
            name: FallbackEngine(eng, functools.partial(choose_fallback, name, engines, self._builtin))
            if eng.may_fall_back
            else eng
            for name, eng in engines.items()
        }
        self._reference: dict[str, float] = {}
        self._measuring: set[str] = set()  # reference loudness being measured (by another thread)
        self._reference_lock = threading.Condition()

    def with_engines(
        self, engines: dict[str, Engine], cache: ClauseCache | None, clips: ClipLibrary | None = None
    ) -> Synthesizer:
        """A Synthesizer for a reloaded config: an engine object kept from this one keeps its lock,
        so old and new renders never call into it at the same time."""
        new = Synthesizer(engines, cache, self._builtin, clips if clips is not None else self.clips)
        for name, eng in engines.items():
            old = next((n for n, e in self.engines.items() if e is eng), None)
            if old is not None:
                new._locks[name] = self._locks.setdefault(old, threading.Lock())
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
            raise InputError(
                "voice", f"unknown voice {voice!r} for engine {engine_name} (allowed: {', '.join(eng.voices)})"
            )
        return voice

    def clip(self, name: str, rate: int) -> Audio:
        """The clip ``name`` at ``rate`` (with its gap after it); InputError when it is not configured."""
        try:
            return self.clips.audio(name, rate)
        except KeyError:
            raise self._unknown_clip(name) from None

    def _unknown_clip(self, name: str) -> InputError:
        have = ", ".join(self.clips.names()) or "none"
        return InputError("clip", f"unknown clip {name!r} (no longer configured; have: {have})")

    def pieces_rate(self, pieces: tuple[tuple[str, str], ...], engine_name: str) -> int:
        """The rate an announcement of ``pieces`` renders at: the engine's (loaded now) when it speaks,
        else its first clip's own rate."""
        if any(kind == SAY for kind, _ in pieces):
            engine = self.engine(engine_name)
            engine.load()
            return engine.sample_rate
        first = next(name for kind, name in pieces if kind == CLIP)
        try:
            return self.clips.clip(first).sample_rate
        except KeyError:
            raise self._unknown_clip(first) from None

    def render_pieces(
        self,
        pieces: tuple[tuple[str, str], ...],
        engine_name: str,
        rate: int,
        style: Style,
        voice: str | None = None,
        stats: SynthStats | None = None,
        translations: tuple[Translation, ...] = (),
    ) -> Iterator[Audio]:
        """Every piece in order at ``rate`` (see ``pieces_rate``): speech clause by clause, clips whole.

        A bilingual announcement's ``translations`` follow its speech, each by its language's
        engine after ``PART_GAP`` seconds of silence (a new sentence in another voice), before
        the clip after it: clip, text, translations, clip.
        """
        stats = stats if stats is not None else SynthStats()
        start = time.perf_counter()
        for kind, value in pieces:
            if kind == CLIP:
                yield stats.counted(self.clip(value, rate), start)
                continue
            yield from self._at(rate, self.render(value, engine_name, style, voice, stats))
            for t in translations:
                yield Audio(np.zeros(int(PART_GAP * rate), np.float32), rate)
                yield from self._at(rate, self.render(t.text, t.engine, style, None, stats))

    @staticmethod
    def _at(rate: int, chunks: Iterator[Audio]) -> Iterator[Audio]:
        for chunk in chunks:
            yield chunk if chunk.sample_rate == rate else Audio(resample(chunk.samples, chunk.sample_rate, rate), rate)

    def render(
        self, text: str, engine_name: str, style: Style, voice: str | None = None, stats: SynthStats | None = None
    ) -> Iterator[Audio]:
        """``text`` as audio chunks at ``engine_name``'s rate: each clause's speech, then its pause."""
        asked = self.engine(engine_name)
        wrapped = self._speaking[engine_name]
        voice = self.check_voice(engine_name, voice)
        stats = stats if stats is not None else SynthStats()
        speaker = self._noted(wrapped.speaker(), stats)
        start = time.perf_counter()
        clauses = speaker.engine.clauses(text)
        i = 0
        while i < len(clauses):
            said = [False]  # a piece of this clause went out: no other engine may take over now
            try:
                yield from self._say(clauses[i], speaker, asked, style, voice, stats, start, said)
            except FALLBACK_ERRORS as exc:
                handed = None if said[0] else wrapped.after_failure(speaker, exc)
                if handed is None:
                    raise
                speaker = self._noted(handed, stats)
                clauses = clauses[:i] + [c for rest in clauses[i:] for c in speaker.engine.clauses(rest)]
                continue
            i += 1

    def _say(
        self,
        clause: str,
        speaker: Speaker,
        asked: Engine,
        style: Style,
        voice: str | None,
        stats: SynthStats,
        start: float,
        said: list[bool],
    ) -> Iterator[Audio]:
        """One clause's speech (resampled to ``asked``'s rate when a fallback speaks), then its pause."""
        eng = speaker.engine
        rate = asked.sample_rate
        if eng is not asked:  # a fallback speaks with its own voice
            voice = eng.default_voice
        resample_from = eng.sample_rate if eng.sample_rate != rate else None
        pieces = self._clause(speaker.name, eng, clause, style, voice, whole=resample_from is not None)
        hit = False
        try:
            for samples, hit, seconds in pieces:  # noqa: B007 (the last piece's hit is read below)
                stats.synth_seconds += seconds
                if len(samples) == 0:
                    continue  # nothing to say: the pause alone follows
                if resample_from is not None:
                    samples = resample(np.asarray(samples, np.float32), resample_from, rate)
                said[0] = True
                yield stats.counted(Audio(np.asarray(samples, np.float32), rate), start)
        finally:
            pieces.close()
        stats.clauses += 1
        stats.cached += int(hit)
        pause = eng.pause_after(clause, style)
        if pause > 0:
            yield stats.counted(Audio(np.zeros(int(pause * rate), np.float32), rate), start)

    @staticmethod
    def _noted(speaker: Speaker, stats: SynthStats) -> Speaker:
        if speaker.warning is not None:
            _LOGGER.warning("%s", speaker.warning)
            stats.engine = speaker.name
            stats.warnings.append(speaker.warning)
        return speaker

    def _clause(
        self, name: str, eng: Engine, clause: str, style: Style, voice: str | None, whole: bool = False
    ) -> Generator[tuple[np.ndarray, bool, float], None, None]:
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

    def render_all(
        self, text: str, engine_name: str, style: Style, voice: str | None = None, stats: SynthStats | None = None
    ) -> Audio:
        rate = self.engine(engine_name).sample_rate
        return Audio.concat(list(self.render(text, engine_name, style, voice, stats)), rate)

    def reference_lufs(self, engine_name: str) -> float | None:
        """Integrated loudness of this engine's neutral voice on a reference sentence.

        Measured once per engine (through the cache, so usually without synthesis) and
        used as the loudness normaliser's starting point: speech declines in level over a
        sentence, so the first piece of a streamed clause alone would mislead it.
        None when the engine cannot render (the normaliser then measures as it goes). One thread
        measures; others asking meanwhile (the speakers of a zone, the daemon's start-up thread) wait
        for its value instead of synthesizing the sentence again, so every speaker starts alike.
        """
        with self._reference_lock:
            while engine_name in self._measuring:
                self._reference_lock.wait()
            if engine_name in self._reference:
                return self._reference[engine_name]
            self._measuring.add(engine_name)
        from ..audio.loudness import integrated_loudness

        try:
            audio = self.render_all(
                REFERENCE_TEXT.get(engine_name, _reference_text(self.engine(engine_name))), engine_name, Style()
            )
            value = integrated_loudness(audio.samples, audio.sample_rate)
        except Exception as exc:  # an engine that is down: measure on the fly instead
            _LOGGER.debug("no reference loudness for %s: %s", engine_name, exc)
            return None
        finally:
            with self._reference_lock:
                self._measuring.discard(engine_name)
                self._reference_lock.notify_all()
        if value != value or value == float("-inf"):
            return None
        with self._reference_lock:
            self._reference[engine_name] = float(value)
        return float(value)


REFERENCE_TEXT: dict[str, str] = {}  # per engine name, to override the language default below


def _reference_text(engine: Engine) -> str:
    langs = [lang.lower() for lang in engine.languages]
    if any(lang.startswith(("zh", "cmn", "yue")) for lang in langs):
        return "各位旅客请注意，开往北京的列车即将进站，请站在安全线以内。"
    return "Attention please. The train to the city centre is now arriving on platform two."


def make_synthesizer(cfg: Config, only: str | tuple[str, ...] | None = None, one_shot: bool = False) -> Synthesizer:
    """The synthesizer of ``cfg``'s engines (created, not loaded); ``only``: just that one, or those;
    ``one_shot`` for one announcement (see ``Engine.one_shot``)."""
    wanted = (only,) if isinstance(only, str) else only
    engines = {
        name: create_engine(name, ecfg, cfg.cache.directory)
        for name, ecfg in cfg.engines.items()
        if wanted is None or name in wanted
    }
    for engine in engines.values():
        engine.one_shot = one_shot
    return Synthesizer(engines, ClauseCache.from_config(cfg.cache), clips=ClipLibrary.from_config(cfg))
