"""Who speaks for an engine that is down: ``FallbackEngine``, a wrapper built once per synthesizer.

An engine that ``may_fall_back`` (a supervised one: its process may be starting or down)
is wrapped. ``speaker()`` names who speaks a render: the engine itself when it is ready
and loads, else its fallback with a warning (``engine sambert is not ready; spoken by
zh``); ``after_failure`` hands a render over when the engine fails before any of a
clause's audio went out (a clause already partly played cannot be spoken again by another
engine). The fallback is the engine's ``fallback`` setting, else the first configured
``embedded-zh`` engine, else a built-in ``embedded-zh`` created once and shared by every
wrapper of the synthesizer. So a fire alarm is never silent because a worker is down.

The synthesizer resamples a fallback's audio to the rate of the engine asked for and puts
the warning in the ``started`` event (``engine``, ``fallback: true``, ``warnings``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import EngineUnavailable
from .base import Engine, Speaker, Style, create_engine, engine_module

_LOGGER = logging.getLogger(__name__)

FALLBACK_ERRORS = (EngineUnavailable, OSError)
BUILTIN_FALLBACK = "embedded-zh"


class BuiltinFallback:
    """The built-in ``embedded-zh`` engine, created on first need (and kept across reloads)."""

    def __init__(self) -> None:
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def get(self, cache_dir: Path | None) -> Engine | None:
        with self._lock:
            if self._engine is None:
                try:
                    config = engine_module(BUILTIN_FALLBACK).Config(type=BUILTIN_FALLBACK)
                    self._engine = create_engine(BUILTIN_FALLBACK, config, cache_dir)
                except Exception:  # noqa: BLE001 - no fallback then; the caller reports the original problem
                    _LOGGER.exception("cannot create the built-in fallback engine")
                    return None
            return self._engine


def choose_fallback(name: str, engines: Mapping[str, Engine], builtin: BuiltinFallback) -> tuple[str, Engine] | None:
    """Who speaks for engine ``name``: its ``fallback``, the first in-process embedded-zh, the built-in one."""
    eng = engines[name]
    wanted = eng.fallback
    if wanted and wanted != name and wanted in engines:
        return wanted, engines[wanted]
    for other_name, other in engines.items():
        if other_name != name and other.type_name == BUILTIN_FALLBACK and not other.supervised:
            return other_name, other
    builtin_engine = builtin.get(eng.cache_dir)
    return (BUILTIN_FALLBACK, builtin_engine) if builtin_engine is not None else None


class FallbackEngine(Engine):
    """``primary`` as the synthesizer uses it: itself while ready, else whoever ``choose`` names."""

    type_name = "fallback"

    def __init__(self, primary: Engine, choose: Callable[[], tuple[str, Engine] | None]) -> None:
        super().__init__(primary.name, primary.config, primary.cache_dir)
        self.primary = primary
        self._choose = choose

    # ---- who speaks ------------------------------------------------------------------
    def speaker(self) -> Speaker:
        if not self.primary.ready:
            found = self._hand_over("is not ready")
            if found is not None:
                return found
        try:
            self.primary.load()
        except FALLBACK_ERRORS as exc:
            found = self._hand_over(f"failed ({exc})")
            if found is None:
                raise
            return found
        return Speaker(self.primary.name, self.primary)

    def after_failure(self, speaker: Speaker, exc: BaseException) -> Speaker | None:
        if speaker.engine is not self.primary or not isinstance(exc, FALLBACK_ERRORS):
            return None
        return self._hand_over(f"failed ({exc})")

    def _hand_over(self, why: str) -> Speaker | None:
        found = self._choose()
        if found is None:
            return None
        name, engine = found
        engine.load()
        return Speaker(name, engine, f"engine {self.primary.name} {why}; spoken by {name}")

    # ---- everything else is the primary's --------------------------------------------
    @property
    def languages(self) -> tuple[str, ...]:
        return self.primary.languages

    @property
    def voices(self) -> tuple[str, ...]:
        return self.primary.voices

    @property
    def default_voice(self) -> str:
        return self.primary.default_voice

    @property
    def emotions(self) -> tuple[str, ...]:
        return self.primary.emotions

    @property
    def emotion_controls(self) -> tuple[str, ...]:
        return self.primary.emotion_controls

    @property
    def sample_rate(self) -> int:
        return self.primary.sample_rate

    @property
    def fingerprint(self) -> str:
        return self.primary.fingerprint

    @property
    def state(self) -> str:
        return self.primary.state

    @property
    def ready(self) -> bool:
        return self.primary.ready

    def load(self) -> None:
        self.primary.load()

    def clauses(self, text: str) -> list[str]:
        return self.primary.clauses(text)

    def synthesize_clause(self, clause: str, style: Style, voice: str | None = None) -> np.ndarray:
        return self.primary.synthesize_clause(clause, style, voice)

    def pause_after(self, clause: str, style: Style) -> float:
        return self.primary.pause_after(clause, style)

    def describe(self) -> dict[str, Any]:
        return self.primary.describe()
