"""Rhasspy Hermes text to speech: ``hermes/tts/say`` in, ``hermes/tts/sayFinished`` out.

``hermes/tts/say`` ``{"text", "siteId", "lang", "id", "sessionId", "volume"}`` becomes an
ordinary announcement (same parser, spool and scheduler as ``P/say``), on the speaker
or zone that ``hermes.sites`` maps its ``siteId`` to:

* ``siteId`` missing: Hermes' ``default``;
* ``hermes.sites`` empty: every siteId plays on ``defaults.targets``;
* ``hermes.sites`` not empty and the siteId not in it: rejected (event ``rejected``
  naming the siteId and the allowed ones).

``hermes/tts/sayFinished`` ``{"id", "siteId", "sessionId"}`` (the request's own values)
goes out once every speaker of the announcement reached a terminal state, whatever it
was (finished, failed, cancelled, expired), and at once for a rejected request, so a
Rhasspy dialogue never waits for nothing. The pairing lives in memory: an
announcement resumed after a daemon restart plays, but sends no sayFinished.

Hermes ids are free-form; an id that is not a valid announcement id
(``[A-Za-z0-9._-]{1,64}``) is mapped to ``hermes-<hash>`` (deterministic, so a
redelivered request is still a duplicate); sayFinished carries the original.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..core.announcement import Announcement, new_id
from ..core.errors import InputError, shown
from ..core.events import EventBus
from ..core.schema import ID_RE
from ..intake.parse import json_object, payload_text
from ..mqtt.link import IncomingMessage, json_bytes
from .base import Integration

_LOGGER = logging.getLogger(__name__)

SAY = "hermes/tts/say"
SAY_FINISHED = "hermes/tts/sayFinished"
SPEAKER_TERMINAL = frozenset({"finished", "failed", "cancelled", "expired"})

Publish = Callable[[str, bytes, int, bool], Any]


class Accepting:  # the part of Intake this module uses
    def accept(self, payload: bytes | str, target: str | None, msg: IncomingMessage | None = None,
               source: str = "mqtt", raw: dict[str, Any] | None = None) -> Announcement | None: ...

    def reject(self, exc: InputError, fields: dict[str, Any] | None, msg: IncomingMessage | None = None
               ) -> None: ...


def announcement_id(hermes_id: Any) -> str:
    """A valid announcement id for a Hermes request id."""
    if hermes_id is None or hermes_id == "":
        return new_id()
    text = hermes_id if isinstance(hermes_id, str) else json.dumps(hermes_id)
    if ID_RE.fullmatch(text):
        return text
    return "hermes-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


@dataclass
class _Pending:
    reply: dict[str, Any]  # the sayFinished payload
    remaining: set[str] | None = None  # speakers still owing a terminal event (None until queued)
    done: set[str] = field(default_factory=set)


class HermesBridge(Integration):
    name = "hermes"

    def __init__(self, cfg: Config, intake: Accepting, events: EventBus, publish: Publish) -> None:
        self.cfg = cfg
        self.intake = intake
        self.events = events
        self._publish = publish
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}

    def subscriptions(self) -> list[str]:
        return [SAY]

    def handle(self, msg: IncomingMessage) -> bool:
        if msg.topic != SAY:
            return False
        self._say(msg)
        return True

    # ---- hermes/tts/say ------------------------------------------------------------------
    def _say(self, msg: IncomingMessage) -> None:
        try:
            obj = json_object(payload_text(msg.payload, self.cfg), f"{SAY} needs a JSON object",
                              f"{SAY} needs a JSON object with \"text\"")
        except InputError as exc:  # no id, siteId or sessionId to answer with: no sayFinished
            self.intake.reject(exc, None, msg)
            return
        site = obj.get("siteId") or "default"
        reply = {"id": obj.get("id"), "siteId": site, "sessionId": obj.get("sessionId")}
        ann_id = announcement_id(obj.get("id"))
        sites = self.cfg.hermes.sites
        bad_site = None
        if not isinstance(site, str):
            bad_site = InputError("siteId", f"must be a string, got {shown(site)}")
        elif sites and site not in sites:
            bad_site = InputError("siteId", f"unknown siteId {site[:60]!r} (allowed: {', '.join(sites)}; "
                                            "map it in hermes.sites)")
        if bad_site is not None:
            self.intake.reject(bad_site, {"id": ann_id}, msg)
            self._finished(reply)
            return
        target = sites.get(site) if sites else None
        fields: dict[str, Any] = {"text": obj.get("text"), "id": ann_id}
        for key in ("volume", "lang"):
            if obj.get(key) is not None:
                fields[key] = obj[key]
        with self._lock:
            fresh = ann_id not in self._pending  # a repeat of a request still playing gets its own reply
            if fresh:
                self._pending[ann_id] = _Pending(reply)
        try:
            ann = self.intake.accept(msg.payload, target, msg, source="hermes", raw=fields)
        except BaseException:  # the spool cannot commit: not acked, the broker redelivers
            if fresh:
                with self._lock:
                    self._pending.pop(ann_id, None)
            raise
        if ann is None:  # rejected (invalid, duplicate, rate limited): the event is out already
            if fresh:
                with self._lock:
                    self._pending.pop(ann_id, None)
            self._finished(reply)

    # ---- events --------------------------------------------------------------------------
    def on_event(self, event: dict[str, Any], ann: Announcement | None) -> None:
        if ann is None:
            return
        state = event["state"]
        with self._lock:
            p = self._pending.get(ann.id)
            if p is None:
                return
            if state == "queued":
                p.remaining = set(event.get("speakers") or ann.speakers) - p.done
            elif state in SPEAKER_TERMINAL and event.get("speaker"):
                p.done.add(event["speaker"])
                if p.remaining is not None:
                    p.remaining.discard(event["speaker"])
            else:
                return
            if p.remaining is None or p.remaining:
                return
            del self._pending[ann.id]
        self._finished(p.reply)

    def _finished(self, reply: dict[str, Any]) -> None:
        try:
            self._publish(SAY_FINISHED, json_bytes(reply), 1, False)
        except Exception as exc:
            _LOGGER.warning("hermes: cannot publish sayFinished for %s: %s", reply.get("id"), exc)
