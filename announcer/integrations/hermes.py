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
from ..core.events import SPEAKER_TERMINAL, Event, EventBus, Queued
from ..core.schema import ID_RE
from ..intake.intake import Intake, Rejected
from ..intake.wire import json_object, payload_text
from ..mqtt.paho_adapter import IncomingMessage, json_bytes
from ..mqtt.router import origin_of
from ..mqtt.topics import HERMES_SAY, HERMES_SAY_FINISHED
from .base import Integration

_LOGGER = logging.getLogger(__name__)

SAY = HERMES_SAY
SAY_FINISHED = HERMES_SAY_FINISHED

Publish = Callable[[str, bytes, int, bool], Any]


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

    def __init__(self, intake: Intake, events: EventBus, publish: Publish) -> None:
        self.intake = intake
        self.events = events
        self._publish = publish
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}

    @property
    def cfg(self) -> Config:
        return self.intake.cfg  # the live config

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
            obj = json_object(
                payload_text(msg.payload, self.cfg),
                f"{SAY} needs a JSON object",
                f'{SAY} needs a JSON object with "text"',
            )
        except InputError as exc:  # no id, siteId or sessionId to answer with: no sayFinished
            self.intake.reject(exc, None, origin_of(msg, "hermes"))
            return
        site = obj.get("siteId") or "default"
        reply = {"id": obj.get("id"), "siteId": site, "sessionId": obj.get("sessionId")}
        ann_id = announcement_id(obj.get("id"))
        sites = self.cfg.hermes.sites
        bad_site = None
        if not isinstance(site, str):
            bad_site = InputError("siteId", f"must be a string, got {shown(site)}")
        elif sites and site not in sites:
            bad_site = InputError(
                "siteId", f"unknown siteId {site[:60]!r} (allowed: {', '.join(sites)}; map it in hermes.sites)"
            )
        if bad_site is not None:
            self.intake.reject(bad_site, {"id": ann_id}, origin_of(msg, "hermes"))
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
            result = self.intake.accept(fields, origin_of(msg, "hermes"), target)
        except BaseException:  # the spool cannot commit: not acked, the broker redelivers
            if fresh:
                with self._lock:
                    self._pending.pop(ann_id, None)
            raise
        if isinstance(result, Rejected):  # invalid, duplicate, rate limited: the event is out already
            if fresh:
                with self._lock:
                    self._pending.pop(ann_id, None)
            self._finished(reply)

    # ---- events --------------------------------------------------------------------------
    def on_event(self, event: Event, ann: Announcement | None) -> None:
        if ann is None:
            return
        state = event.state
        with self._lock:
            p = self._pending.get(ann.id)
            if p is None:
                return
            speaker = event.speaker_name
            if isinstance(event, Queued):
                p.remaining = set(event.speakers or ann.speakers) - p.done
            elif state in SPEAKER_TERMINAL and speaker:
                p.done.add(speaker)
                if p.remaining is not None:
                    p.remaining.discard(speaker)
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
