"""The Announcement value: one accepted announcement, as the spool keeps it and the players play it.

Built from a payload by ``announcer.intake.parse`` (the one parser every front door uses).

What is played is ``pieces()``: the ``text`` spoken, unless ``parts`` says otherwise (a
recorded clip alone, or a template's expansion such as clip, speech, clip). ``template``
and ``vars`` keep what was asked for, ``via`` where it came from (an MQTT topic and client,
an HTTP token, a schedule), for the history. Records spooled before these fields existed
read as spoken text from an unknown ``via``.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .schema import PRIORITY_RANK

SAY = "say"  # a piece of speech: the engine renders its text
CLIP = "clip"  # a recorded clip (``clips:`` in the config), by name

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Translation:
    """The announcement in another language, spoken after the text by ``engine`` (the language's)."""

    lang: str
    text: str
    engine: str


@dataclass(frozen=True)
class Announcement:
    id: str
    text: str
    targets: tuple[str, ...]  # speaker/zone names as requested
    speakers: tuple[str, ...]  # expanded to speakers
    emotion: str = "neutral"
    intensity: float = 1.0
    speed: float = 1.0
    volume: float | None = None  # None: the speaker's own volume
    priority: str = "normal"
    chime: bool | str = True
    repeat: int = 1
    repeat_gap: float = 1.0
    ttl: float = 600.0
    sent_at: float | None = None  # epoch seconds, as the publisher said (payload ``sent_at``)
    engine: str = ""
    voice: str | None = None
    lang: str | None = None
    translations: tuple[Translation, ...] = ()  # spoken in order after ``text``, after one chime
    received: float = field(default_factory=time.time)  # epoch seconds
    expires: float = 0.0  # epoch seconds; min(received + ttl, sent_at + ttl, MQTT message expiry)
    warnings: tuple[str, ...] = ()
    source: str = "mqtt"
    response_topic: str | None = None
    correlation_data: bytes | None = None
    parts: tuple[tuple[str, str], ...] = ()  # ((SAY, text) | (CLIP, name), ...); empty: say ``text``
    template: str | None = None  # the template it was made from
    vars: Pairs = ()  # that template's variables as given (name, value as text)
    via: Pairs = ()  # where it came from: (("topic", ...), ("client", ...)), (("token", ...)), (("schedule", ...))

    @property
    def rank(self) -> int:
        return PRIORITY_RANK[self.priority]

    def pieces(self) -> tuple[tuple[str, str], ...]:
        """What to play, in order: ``(SAY, text)`` and ``(CLIP, name)`` pieces."""
        return self.parts or ((SAY, self.text),)

    @property
    def clips(self) -> tuple[str, ...]:
        """The clips it plays, in order."""
        return tuple(name for kind, name in self.parts if kind == CLIP)

    @property
    def speaks(self) -> bool:
        """Whether an engine has anything to say (a clip alone needs none)."""
        return any(kind == SAY for kind, _ in self.pieces())

    @property
    def engines(self) -> tuple[str, ...]:
        """The engines it needs: its own, then each translation's (language's)."""
        return tuple(dict.fromkeys((self.engine, *(t.engine for t in self.translations))))

    @property
    def summary(self) -> str:
        """For displays: the text, or the clips played (``[clip bell]``) when there is no text."""
        return self.text or " ".join(f"[clip {name}]" for name in self.clips)

    def to_json(self) -> str:
        d = asdict(self)
        d["correlation_data"] = self.correlation_data.hex() if self.correlation_data is not None else None
        return json.dumps(d, ensure_ascii=False)

    @staticmethod
    def from_json(data: str) -> Announcement:
        d = json.loads(data)
        cd = d.get("correlation_data")
        d["correlation_data"] = bytes.fromhex(cd) if cd else None
        for k in ("targets", "speakers", "warnings"):
            d[k] = tuple(d.get(k) or ())
        for k in ("parts", "vars", "via"):  # lists of pairs in JSON
            d[k] = tuple((str(a), str(b)) for a, b in d.get(k) or ())
        d["translations"] = tuple(Translation(**t) for t in d.get("translations") or ())
        known = {f for f in Announcement.__dataclass_fields__}
        return Announcement(**{k: v for k, v in d.items() if k in known})

    def with_(self, **changes: Any) -> Announcement:
        return replace(self, **changes)


def new_id() -> str:
    return uuid.uuid4().hex[:12]
