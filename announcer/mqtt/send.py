"""``announcer send``: publish one announcement to the daemon through the broker, optionally wait for it.

The announcement goes to ``P/say`` (or ``P/say/<target>`` for exactly one target; for
several, ``targets`` goes into the payload) at QoS 1 from a short-lived client
(``announcer-send-<random>``, clean start, no last will). The id is chosen here when the
payload has none, so the events can be matched. With MQTT 5 the PUBLISH carries a
ResponseTopic ``P/reply/<random>``, CorrelationData and the user property ``client``:
``announcer send (user@host)``, which the daemon's history records.

With ``wait``, ``P/events`` and the response topic are subscribed *before* publishing.
When the wait is over:

* an event for our id in a terminal state *without* a ``speaker`` field (``rejected``,
  ``expired``, ``cancelled``, or a summary event on the response topic) ends it;
* per-speaker terminal events (``finished``, ``failed``, ``cancelled``, ``expired`` with
  ``speaker``) end it once every speaker of the announcement has one. The speakers are
  taken from the ``queued`` event (its ``speakers``, else its ``targets`` expanded through
  the local config's zones); without a ``queued`` event, from the requested targets or
  the local default targets. ``interrupted`` is not terminal (an interrupted speaker
  may still finish or fail later).

Exit codes: 0 when the outcome is ``finished`` (on every speaker), 1 for any other
terminal state or a timeout (event None), 2 when the broker cannot be reached or does
not acknowledge the publish. For several speakers the returned event is the deciding
one (the first non-finished, else the last finished) with ``results``:
``{speaker: state}`` added.
"""

from __future__ import annotations

import getpass
import json
import logging
import secrets
import socket
import sys
import threading
import time
from typing import Any, TextIO

from ..config import Config
from ..core.announcement import new_id
from ..core.events import TERMINAL
from .link import MqttLink
from .paho_adapter import IncomingMessage, json_bytes, publish_properties
from .topics import Topics

_LOGGER = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0


class _Waiter:
    """Collects the events of one announcement and decides when it is over."""

    def __init__(
        self, cfg: Config, ann_id: str, targets: list[str] | None, reply_topic: str | None, correlation: bytes
    ) -> None:
        self.cfg = cfg
        self.ann_id = ann_id
        self.requested = targets
        self.reply_topic = reply_topic
        self.correlation = correlation
        self.speakers: tuple[str, ...] | None = None
        self.outcomes: dict[str, dict[str, Any]] = {}
        self.result: tuple[int, dict[str, Any]] | None = None
        self.done = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, msg: IncomingMessage) -> None:
        if msg.topic == self.reply_topic and msg.correlation_data not in (None, self.correlation):
            return
        try:
            event = json.loads(msg.payload)
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(event, dict) or event.get("id") != self.ann_id:
            return
        with self._lock:
            if self.result is None:
                self._feed(event)
                if self.result is not None:
                    self.done.set()

    def _expected(self) -> tuple[str, ...]:
        if self.speakers is not None:
            return self.speakers
        return self.cfg.expand_targets(self.requested or list(self.cfg.default_targets))

    def _feed(self, event: dict[str, Any]) -> None:
        state = event.get("state")
        speaker = event.get("speaker")
        if state == "queued":
            if isinstance(event.get("speakers"), list):
                self.speakers = tuple(event["speakers"])
            elif isinstance(event.get("targets"), list):
                self.speakers = self.cfg.expand_targets(event["targets"])
            return
        if state not in TERMINAL:
            return
        if not speaker:
            self.result = (0 if state == "finished" else 1, event)
            return
        self.outcomes[speaker] = event
        expected = self._expected()
        if not all(s in self.outcomes for s in expected):
            return
        results = {s: self.outcomes[s].get("state") for s in self.outcomes}
        bad = [self.outcomes[s] for s in self.outcomes if self.outcomes[s].get("state") != "finished"]
        deciding = dict(bad[0] if bad else event)
        if len(self.outcomes) > 1:
            deciding["results"] = results
        self.result = (1 if bad else 0, deciding)


def sender() -> str:
    """How ``announcer send`` names itself (the ``client`` user property): ``announcer send (user@host)``."""
    try:
        who = f"{getpass.getuser()}@{socket.gethostname()}"
    except (OSError, KeyError):
        who = socket.gethostname()
    return f"announcer send ({who})"[:64]


def send(
    cfg: Config,
    payload: dict[str, Any],
    target: list[str] | None,
    wait: bool,
    timeout: float,
    *,
    connect_timeout: float | None = None,
    err: TextIO | None = None,
) -> tuple[int, dict[str, Any] | None]:
    """Publish ``payload`` as an announcement; see the module doc for waiting and exit codes.

    ``payload`` holds announcement fields (``text`` and any of ``emotion``, ``priority`` ...);
    it is not modified. Problems are written as one line to ``err`` (default stderr).
    """
    err = err or sys.stderr
    topics = Topics.under(cfg.mqtt.topic_prefix)
    body = dict(payload)
    body.setdefault("id", new_id())
    ann_id = str(body["id"])
    topic = topics.say
    if target and len(target) == 1:
        topic = topics.say_to(target[0])
        body.pop("targets", None)
    elif target:
        body["targets"] = list(target)

    v5 = cfg.mqtt.protocol == "5"
    token = secrets.token_hex(8)
    reply_topic = topics.reply(token) if v5 else None
    correlation = secrets.token_bytes(16)
    requested = body.get("targets")
    requested = [requested] if isinstance(requested, str) else requested
    waiter = _Waiter(
        cfg,
        ann_id,
        list(target) if target else (requested if isinstance(requested, list) else None),
        reply_topic,
        correlation,
    )
    subs = [topics.events] + ([reply_topic] if reply_topic else []) if wait else []

    link = MqttLink(cfg.mqtt, waiter, subs, client_id=f"announcer-send-{token}", persistent=False, availability=False)
    deadline = time.monotonic() + timeout
    link.start()
    try:
        limit = min(timeout, CONNECT_TIMEOUT) if connect_timeout is None else connect_timeout
        if not link.wait_connect_attempt(limit) or not link.wait_connected(0):
            why = link.last_error or f"no answer within {limit:g}s"
            print(f"announcer send: cannot connect to {link.broker}: {why}", file=err)
            return 2, None
        if wait and not link.wait_subscribed(max(0.1, deadline - time.monotonic())):
            print(f"announcer send: {link.broker} did not confirm the subscription to {topics.events}", file=err)
            return 2, None
        props = (
            publish_properties(
                response_topic=reply_topic,
                correlation_data=correlation,
                content_type="application/json",
                client=sender(),
            )
            if v5
            else None
        )
        info = link.publish(topic, json_bytes(body), qos=1, properties=props)
        try:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        except (RuntimeError, ValueError) as exc:
            print(f"announcer send: publishing to {topic} failed: {exc}", file=err)
            return 2, None
        if not info.is_published():
            print(f"announcer send: {link.broker} did not acknowledge the announcement", file=err)
            return 2, None
        _LOGGER.info("sent %s to %s", ann_id, topic)
        if not wait:
            return 0, None
        if not waiter.done.wait(max(0.0, deadline - time.monotonic())):
            print(f"announcer send: no terminal event for {ann_id} within {timeout:g}s", file=err)
            return 1, None
        assert waiter.result is not None
        return waiter.result
    finally:
        link.close()
