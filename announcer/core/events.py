"""Announcement events: built in one place, logged one line each, fanned out to listeners.

States: queued, started, finished, interrupted, cancelled, expired, rejected, failed.
``started``/``finished``/``interrupted``/``failed`` are per speaker. The MQTT side
subscribes a listener that publishes each event to ``P/events`` (and the terminal one
to an MQTT 5 response topic); the HTTP side may subscribe another.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from .announcement import Announcement

_LOGGER = logging.getLogger("announcer.events")

STATES = ("queued", "started", "finished", "interrupted", "cancelled", "expired", "rejected", "failed")
TERMINAL = frozenset({"finished", "cancelled", "expired", "rejected", "failed"})

Listener = Callable[[dict[str, Any], "Announcement | None"], None]


def utc_ts(epoch: float | None = None) -> str:
    dt = datetime.now(timezone.utc) if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class EventBus:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def emit(self, state: str, ann: Announcement | None = None, ann_id: str | None = None,
             **fields: Any) -> dict[str, Any]:
        """Build, log and publish one event. ``ann_id`` is for rejections that never became an Announcement."""
        if state not in STATES:
            raise ValueError(f"unknown event state {state}")
        event: dict[str, Any] = {"id": ann.id if ann is not None else ann_id, "state": state, "ts": utc_ts()}
        event.update({k: v for k, v in fields.items() if v is not None})
        self._log(event)
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event, ann)
            except Exception:  # a broken listener must not stop the others or the caller
                _LOGGER.exception("event listener failed for %s", event.get("id"))
        return event

    @staticmethod
    def _log(event: dict[str, Any]) -> None:
        extras = " ".join(f"{k}={v}" for k, v in event.items() if k not in ("id", "state", "ts"))
        level = logging.WARNING if event["state"] in ("rejected", "failed", "expired") else logging.INFO
        _LOGGER.log(level, "%s %s %s", event.get("id"), event["state"], extras)
