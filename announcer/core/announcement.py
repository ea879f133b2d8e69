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
    received: float = field(default_factory=time.time)  # epoch seconds
    expires: float = 0.0  # epoch seconds; min(received + ttl, sent_at + ttl, MQTT message expiry)
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
        known = {f for f in Announcement.__dataclass_fields__}
        return Announcement(**{k: v for k, v in d.items() if k in known})

    def with_(self, **changes: Any) -> Announcement:
        return replace(self, **changes)


def new_id() -> str:
    return uuid.uuid4().hex[:12]
