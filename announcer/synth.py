"""Text to a stream of audio chunks: engine + clause splitting + cache.

``Synthesizer.render`` yields one chunk per clause (the clause followed by its pause),
so the first clause can play while the next one is synthesized. Calls into one engine
are serialised with a lock (engines are safe for one caller at a time); different
engines run in parallel.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .audio import Audio
from .cache import ClauseCache
from .engines.base import Engine, Style
from .errors import InputError

_LOGGER = logging.getLogger(__name__)


@dataclass
class SynthStats:
    """Filled in while rendering: for metrics, benchmarks and events."""

    clauses: int = 0
    cached: int = 0
    synth_seconds: float = 0.0
    audio_seconds: float = 0.0
    first_chunk_seconds: float | None = None


class Synthesizer:
    def __init__(self, engines: dict[str, Engine], cache: ClauseCache | None = None) -> None:
        self.engines = engines
        self.cache = cache
        self._locks = {name: threading.Lock() for name in engines}

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

    def render(self, text: str, engine_name: str, style: Style, voice: str | None = None,
               stats: SynthStats | None = None) -> Iterator[Audio]:
        eng = self.engine(engine_name)
        voice = self.check_voice(engine_name, voice)
        eng.load()
        start = time.perf_counter()
        clauses = eng.clauses(text)
        lock = self._locks.setdefault(engine_name, threading.Lock())
        for clause in clauses:
            t0 = time.perf_counter()
            samples = None
            key = None
            if self.cache is not None:
                key = self.cache.key(eng.fingerprint, voice, style.emotion, style.intensity, style.speed, clause)
                samples = self.cache.get(key)
            hit = samples is not None
            if samples is None:
                with lock:
                    samples = eng.synthesize_clause(clause, style, voice)
                if self.cache is not None and key is not None:
                    self.cache.put(key, samples)
            pause = eng.pause_after(clause, style)
            if pause > 0:
                samples = np.concatenate([samples, np.zeros(int(pause * eng.sample_rate), np.float32)])
            chunk = Audio(np.asarray(samples, np.float32), eng.sample_rate)
            if stats is not None:
                stats.clauses += 1
                stats.cached += int(hit)
                stats.synth_seconds += time.perf_counter() - t0
                stats.audio_seconds += chunk.duration
                if stats.first_chunk_seconds is None:
                    stats.first_chunk_seconds = time.perf_counter() - start
            yield chunk

    def render_all(self, text: str, engine_name: str, style: Style, voice: str | None = None,
                   stats: SynthStats | None = None) -> Audio:
        rate = self.engine(engine_name).sample_rate
        return Audio.concat(list(self.render(text, engine_name, style, voice, stats)), rate)
