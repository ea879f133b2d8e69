"""The speakers' players: one per configured speaker, made, re-chained, retired and joined.

Plain bookkeeping of ``Player`` objects for the scheduler, which holds its lock around
every change. A speaker removed by a reload keeps its player until what it plays is
done (``retired``: its thread then ends by itself); a speaker added gets a new player,
started at once when the scheduler runs; an existing one takes its new sink and chain
before its next job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from ..sinks.base import Sink
from .player import Player
from .speaker_chain import SpeakerChain

_LOGGER = logging.getLogger(__name__)


class Speakers:
    def __init__(self, make: Callable[[str, Sink], Player], sinks: Mapping[str, Sink]) -> None:
        self._make = make
        self.players: dict[str, Player] = {name: make(name, sink) for name, sink in sinks.items()}
        self.retired: list[Player] = []  # removed by a reload, finishing what they play

    def get(self, name: str) -> Player | None:
        """The player of ``name``: the configured one, else a retired one still playing."""
        return self.players.get(name) or next((p for p in self.retired if p.name == name), None)

    def start(self) -> None:
        for p in self.players.values():
            p.thread.start()

    def sync(self, sinks: Mapping[str, Sink], chain: Callable[[str], SpeakerChain], start: bool) -> list[str]:
        """Match the players to ``sinks`` (one per speaker of a reloaded config); the names added."""
        for name in [n for n in self.players if n not in sinks]:
            player = self.players.pop(name)
            player.retired = True
            self.retired.append(player)
        added = []
        for name, sink in sinks.items():
            existing = self.players.get(name)
            if existing is None:
                self.players[name] = new = self._make(name, sink)
                added.append(name)
                if start:
                    new.thread.start()
            else:
                existing.reconfigure(sink if sink is not existing.sink else None, chain(name))
        self.retired = [p for p in self.retired if p.thread.is_alive()]
        return added

    def beat(self, name: str) -> None:
        player = self.players.get(name)
        if player is not None:
            player.beat()

    def health(self) -> list[str]:
        """Why players are not making progress (empty: all are); for the watchdog."""
        players = [*self.players.values(), *(p for p in self.retired if p.thread.is_alive())]
        return [problem for p in players if p.thread.ident is not None and (problem := p.health()) is not None]

    def join(self, deadline: float, names: Callable[[str], bool] = lambda _name: True) -> None:
        """Wait (until ``deadline``, monotonic) for the threads of the players ``names`` accepts."""
        for p in [*self.players.values(), *self.retired]:
            if names(p.name) and p.thread.is_alive():
                p.thread.join(max(0.0, deadline - time.monotonic()))

    def still_running(self) -> list[str]:
        return [p.name for p in [*self.players.values(), *self.retired] if p.thread.is_alive()]
