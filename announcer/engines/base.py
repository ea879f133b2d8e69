"""The engine contract and the registry of engine types.

An engine turns one clause of already-normalised text into audio. Callers split text
into clauses (``Engine.clauses``) and synthesize them one at a time, so the first clause
can play while the next is synthesized; engines that can also stream within a clause
override ``synthesize_clause_stream``. Engines are loaded lazily (``load``) and are
safe for one caller at a time: the synthesizer serialises calls per engine instance.

Each engine module declares its own pydantic ``Config`` model (with a ``type`` literal)
and imports its heavy libraries only inside ``load``; importing the module is cheap so
that the config layer can collect the schemas.
"""

from __future__ import annotations

import importlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class Style:
    """How to say a clause: resolved emotion name, intensity 0..2, speed 0.5..2 (2 = twice as fast)."""

    emotion: str = "neutral"
    intensity: float = 1.0
    speed: float = 1.0


# What an engine can move to render an emotion (``Engine.emotion_controls``): speaking rate,
# pitch level, pitch range, vocal effort, loudness, pauses, or a voice recorded in that emotion.
EMOTION_CONTROLS: tuple[str, ...] = ("rate", "pitch", "pitch-range", "energy", "level", "pause", "voice")

StateCallback = Callable[[str, str], None]  # (engine name, new state)


@dataclass(frozen=True)
class Speaker:
    """The engine that speaks a render for the one asked for: itself, or a fallback (with a warning)."""

    name: str
    engine: Engine
    warning: str | None = None  # "engine x is not ready; spoken by y" when another engine speaks


class Engine(ABC):
    """One configured engine instance.

    Lifecycle: the daemon calls ``start`` once (a plain engine loads there; a supervised
    one starts its process in the background, see ``announcer.engines.supervised``) and
    ``close`` at the end; one-shot commands just call ``load``. ``state`` says whether it
    can speak now: always ``ready`` for an engine that renders in this process.
    """

    type_name: ClassVar[str]
    # its server runs as a process of its own (started in the background when the config gives a
    # command): its state goes into P/status, and a fallback speaks while it is down
    supervised: ClassVar[bool] = False

    def __init__(self, name: str, config: Any, cache_dir: Path | None = None) -> None:
        self.name = name
        self.config = config
        self.cache_dir = cache_dir
        self._load_lock = threading.Lock()
        self._loaded = False
        # one announcement, then the process ends (announcer say --out): the model is loaded only
        # when a clause is not in the cache, and not warmed up on a dummy input (the daemon does both
        # at start, so that the first announcement is not slower)
        self.one_shot = False

    # --- what the engine declares -------------------------------------------------
    @property
    @abstractmethod
    def languages(self) -> tuple[str, ...]: ...

    @property
    @abstractmethod
    def voices(self) -> tuple[str, ...]: ...

    @property
    def default_voice(self) -> str:
        return self.voices[0]

    @property
    @abstractmethod
    def emotions(self) -> tuple[str, ...]:
        """Emotions this engine renders natively (others play as neutral)."""

    @property
    def emotion_controls(self) -> tuple[str, ...]:
        """How this engine renders the emotions it lists, out of ``EMOTION_CONTROLS`` (empty: it does not).

        ``announcer engines`` and ``/api/info`` show it, so a user knows what an emotion changes on
        each engine (the speaker chain adds each emotion's level offset for every engine besides).
        """
        return ()

    @property
    @abstractmethod
    def sample_rate(self) -> int: ...

    @property
    def fingerprint(self) -> str:
        """Changes whenever the same text would render differently (model, version, settings)."""
        return f"{self.type_name}:{self.config!r}"

    # --- lifecycle ----------------------------------------------------------------
    def load(self) -> None:
        """Load models once; cheap when already loaded. Raises EngineUnavailable with a fix."""
        with self._load_lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def _load(self) -> None:  # engines with heavy state override this
        return None

    def start(self, on_change: StateCallback | None = None) -> None:
        """In the daemon: make the engine ready. Loads it here (EngineUnavailable when it cannot);
        a supervised engine starts its process in the background and reports to ``on_change``."""
        self.load()

    @property
    def state(self) -> str:
        """``ready``, or for a supervised engine ``starting`` / ``down`` / ``stopped``."""
        return "ready"

    @property
    def ready(self) -> bool:
        """Whether a render may go to this engine now (a one-shot ``load`` starts what it needs)."""
        return True

    @property
    def fallback(self) -> str | None:
        """The engine that speaks while this one is not ready (None: the built-in choice)."""
        return None

    @property
    def may_fall_back(self) -> bool:
        """Whether another engine may speak for this one while it is down (supervised engines)."""
        return False

    def close(self) -> None:
        return None

    def speaker(self) -> Speaker:
        """Who speaks a render of this engine: itself, loaded unless one-shot (a ``FallbackEngine`` may hand over)."""
        if not self.one_shot:
            self.load()
        return Speaker(self.name, self)

    def after_failure(self, speaker: Speaker, exc: BaseException) -> Speaker | None:
        """Who takes over when ``speaker`` failed before a clause's audio went out (None: nobody)."""
        return None

    # --- text and audio -----------------------------------------------------------
    @abstractmethod
    def clauses(self, text: str) -> list[str]:
        """Normalise ``text`` and split it into clauses, each short enough to synthesize alone."""

    @abstractmethod
    def synthesize_clause(self, clause: str, style: Style, voice: str | None = None) -> np.ndarray:
        """Render one clause (as returned by ``clauses``) to mono float32 at ``sample_rate``."""

    def synthesize_clause_stream(
        self, clause: str, style: Style, voice: str | None = None
    ) -> Generator[np.ndarray, None, None]:
        """The same clause as consecutive pieces, each yielded as soon as it is rendered.

        The default yields ``synthesize_clause`` once. Engines that can render a clause
        progressively override it (``synthesize_clause`` must then equal the concatenated
        pieces) and must allow other calls into the engine between two pieces: callers
        serialise each step of a stream, not the whole stream.
        """
        yield self.synthesize_clause(clause, style, voice)

    def pause_after(self, clause: str, style: Style) -> float:
        """Seconds of silence to put after ``clause`` (depends on its punctuation and the style)."""
        return 0.0

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type_name,
            "languages": list(self.languages),
            "voices": list(self.voices),
            "emotions": list(self.emotions),
            "emotion_controls": list(self.emotion_controls),
            "sample_rate": self.sample_rate,
        }


# type name -> module that defines pydantic ``Config`` and ``ENGINE``: an ``Engine`` subclass, or a
# function of (name, config, cache_dir) that picks one (``wyoming``: plain, or managed with ``command``)
ENGINE_MODULES: dict[str, str] = {
    "embedded-zh": "announcer.engines.embedded_zh",
    "espeak": "announcer.engines.espeak",
    "wyoming": "announcer.engines.wyoming",
    "sambert": "announcer.engines.sambert",  # a Wyoming engine served by a supervised worker process
    "kokoro": "announcer.engines.kokoro",  # Kokoro-82M v1.0 on onnxruntime (extra announcer[kokoro])
}


def engine_module(type_name: str) -> Any:
    try:
        return importlib.import_module(ENGINE_MODULES[type_name])
    except KeyError:
        allowed = ", ".join(sorted(ENGINE_MODULES))
        raise ValueError(f"unknown engine type {type_name!r} (allowed: {allowed})") from None


def create_engine(name: str, config: Any, cache_dir: Path | None = None) -> Engine:
    """Instantiate (not load) the engine for a validated config model."""
    engine: Engine = engine_module(config.type).ENGINE(name, config, cache_dir)
    return engine
