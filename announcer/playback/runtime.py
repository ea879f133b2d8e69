"""The runtime: what a config turns into (engines, speakers, chimes), immutable, behind one live holder.

A reload builds a whole new ``Runtime`` (reusing the engines and sinks whose config did
not change, see ``announcer.service.reload``) and swaps it into the ``LiveRuntime`` in one
step. Every consumer reads ``live.current`` per job or per request, never keeps a part of
it: the players take their sink and chain per announcement, the intake its config per
message, the HTTP API and the Wyoming server the synthesizer per request. What already
runs finishes with the runtime it started with.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from ..audio.chimes import ChimeLibrary
from ..config import Config
from ..sinks.base import Sink, SinkContext, create_sink
from .synthesizer import Synthesizer, make_synthesizer


@dataclass(frozen=True)
class Runtime:
    config: Config
    synth: Synthesizer
    sinks: Mapping[str, Sink]  # one per speaker of ``config``
    chimes: ChimeLibrary

    @classmethod
    def build(
        cls,
        cfg: Config,
        sink_context: SinkContext | None = None,
        speakers: tuple[str, ...] | None = None,
        engine: str | tuple[str, ...] | None = None,
    ) -> Runtime:
        """A fresh runtime for ``cfg`` (engines created, not loaded); ``speakers``/``engine``: only those."""
        names = speakers if speakers is not None else tuple(cfg.speakers)
        sinks = {name: create_sink(name, cfg.speakers[name], sink_context) for name in names}
        return cls(cfg, make_synthesizer(cfg, only=engine), sinks, ChimeLibrary.from_config(cfg))

    def __post_init__(self) -> None:
        for name in self.sinks:
            if name not in self.config.speakers:
                raise ValueError(f"sink {name!r} has no speaker config")


class LiveRuntime:
    """The one place the current runtime is read from (thread-safe)."""

    def __init__(self, runtime: Runtime) -> None:
        self._lock = threading.Lock()
        self._current = runtime

    @property
    def current(self) -> Runtime:
        with self._lock:
            return self._current

    @property
    def config(self) -> Config:
        return self.current.config

    def swap(self, runtime: Runtime) -> Runtime:
        """Make ``runtime`` current; returns the one it replaced."""
        with self._lock:
            old, self._current = self._current, runtime
        return old
