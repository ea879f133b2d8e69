"""The Announcement value: one accepted announcement, as the spool keeps it and the players play it.

Built from a payload by ``announcer.intake.parse`` (the one parser every front door uses).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .schema import PRIORITY_RANK


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
    engine: str = ""
    voice: str | None = None
    lang: str | None = None
    translations: tuple[Translation, ...] = ()  # spoken in order after ``text``, after one chime
    received: float = field(default_factory=time.time)  # epoch seconds
    expires: float = 0.0  # epoch seconds; min(received + ttl, MQTT message expiry)
    warnings: tuple[str, ...] = ()
    source: str = "mqtt"
    response_topic: str | None = None
    correlation_data: bytes | None = None

    @property
    def rank(self) -> int:
        return PRIORITY_RANK[self.priority]

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
        d["translations"] = tuple(Translation(**t) for t in d.get("translations") or ())
        known = {f for f in Announcement.__dataclass_fields__}
        return Announcement(**{k: v for k, v in d.items() if k in known})

    def parts(self) -> tuple[tuple[str, str, str | None], ...]:
        """What is spoken, in order: ``(text, engine, voice)`` of the text, then of each translation."""
        return ((self.text, self.engine, self.voice), *((t.text, t.engine, None) for t in self.translations))

    def with_(self, **changes: Any) -> Announcement:
        return replace(self, **changes)


def new_id() -> str:
    return uuid.uuid4().hex[:12]
