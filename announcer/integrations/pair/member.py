"""One member of an active/standby pair, as a part of the daemon: leadership, the start gate, what the
other member played.

* **Topics** (``P`` is the shared prefix; ``<me>`` this member's ``mqtt.client_id``): the link's
  last will and ``online``/``offline`` are on ``P/pair/<me>/availability`` (not ``P/availability``);
  the lease is ``P/pair/leader``; this member's own status ``P/pair/<me>/status``; after every
  connect it sends itself ``P/pair/<me>/sync`` (with no retained lease, the marker's return and
  ``peer_timeout`` say that there is none).
* **Leadership** (``announcer.integrations.pair.lease``): a thread re-decides every
  ``TICK_S`` and at every change it hears of. Taking the lead: the scheduler resumes the spool
  (``resume_pending``: what the old leader did not finish). Losing it: the scheduler hands
  everything back to the spool (``release``).
* **The start gate** (``may_start``, read by the scheduler's players): only the leader starts an
  announcement, only while it heard from the broker within the keepalive, and only once the
  broker acknowledged every terminal event it published (``Deliveries``): what it finished is
  then with the broker for the standby, whatever happens next, so a takeover replays only what
  was playing.
* **Front doors** (``scheduling``, what the intake hands accepted announcements and stops to):
  the leader schedules them; the other member keeps them in its spool (``shadow``).
* **Events and status**: only the leader publishes on ``P/events`` and ``P/status``
  (``publishing``); both follow the other's ``P/events`` and retire what it reports done
  (``announcer.integrations.pair.shadow``). ``status_fields`` is the ``pair`` block of the status.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...config import Config
from ...core.announcement import Announcement
from ...mqtt.paho_adapter import IncomingMessage, json_bytes
from ...mqtt.publisher import Deliveries
from ...mqtt.topics import Topics
from ...spool.store import Spool
from ..base import Integration
from .lease import FENCED, LEADER, STANDBY, STARTING, Lease, LeaseBook, rank_of
from .shadow import Shadow

if TYPE_CHECKING:
    from ...mqtt.link import MqttLink
    from ...playback.scheduler import Scheduler

_LOGGER = logging.getLogger(__name__)

TICK_S = 0.2
LEADING = (LEADER, FENCED)


class PairMember(Integration):
    name = "pair"

    def __init__(self, cfg: Config, topics: Topics, spool: Spool, config: Callable[[], Config]) -> None:
        assert cfg.pair is not None
        self.me = cfg.mqtt.client_id
        self.peer = cfg.pair.peer
        self.topics = topics
        self.keepalive = float(cfg.mqtt.keepalive)
        self.book = LeaseBook(
            self.me, self.peer, rank_of(self.me, self.peer, cfg.pair.role), cfg.pair.peer_timeout, self.keepalive
        )
        self.shadow = Shadow(spool, config)
        self.role = STARTING
        self.link: MqttLink | None = None
        self.scheduler: Scheduler | None = None
        self.deliveries: Deliveries | None = None
        self.on_change: Callable[[], None] | None = None  # the role changed: publish the status
        self._cv = threading.Condition(threading.RLock())
        self._token = ""
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pair", daemon=True)

    @property
    def availability_topic(self) -> str:
        return self.topics.member_availability(self.me)

    def attach(self, scheduler: Scheduler, link: MqttLink, deliveries: Deliveries) -> None:
        self.scheduler = scheduler
        self.shadow.scheduler = scheduler
        self.link = link
        self.deliveries = deliveries
        link.on_published = self._acked

    def _acked(self, mid: int) -> None:
        if self.deliveries is not None and self.deliveries.acked(mid) and self.scheduler is not None:
            self.scheduler.wake()  # the last terminal event is with the broker: the next may start

    # ---- what the rest of the daemon asks --------------------------------------------------
    @property
    def publishing(self) -> bool:
        """This member speaks for the pair (``P/events``, ``P/status``, the integrations)."""
        return self.role in LEADING

    def may_start(self) -> bool:
        """The scheduler's start gate: the leader, with word from the broker within the keepalive, and
        every terminal event it published acknowledged (so the standby knows all it played but what plays)."""
        link, deliveries = self.link, self.deliveries
        return (
            self.role == LEADER
            and link is not None
            and link.silent_for() <= self.keepalive
            and (deliveries is None or deliveries.all_acked())
        )

    def submit(self, ann: Announcement) -> None:
        """The intake's ``submit``: the leader schedules, the other member holds it in its spool."""
        with self._cv:
            if self.role in LEADING and self.scheduler is not None:
                self.scheduler.submit(ann)
            else:
                self.shadow.held(ann)

    def stop(self, target: str | None, priority_below: str | None = None) -> int:
        with self._cv:
            if self.role in LEADING and self.scheduler is not None:
                return self.scheduler.stop(target, priority_below)
            return self.shadow.stop(target, priority_below)

    def status_fields(self) -> dict[str, Any]:
        lease = self.book.lease
        return {
            "pair": {
                "member": self.me,
                "role": self.role,
                "leader": lease.member if lease is not None else None,
                "epoch": lease.epoch if lease is not None else None,
                "peer": self.peer,
                "peer_state": self.book.peer_state or "unknown",
            }
        }

    # ---- Integration -----------------------------------------------------------------------
    def subscriptions(self) -> list[str]:
        return [self.topics.pair_all, self.topics.events]

    def on_connect(self) -> None:
        """Every (re)connect: forget the old connection's state, then ask the broker for a marker."""
        with self._cv:
            self.book.on_connected(time.monotonic())
            self._token = secrets.token_hex(8)
            token = self._token
        if self.link is not None:
            self.link.publish(self.topics.member_sync(self.me), token, qos=1)

    def handle(self, msg: IncomingMessage) -> bool:
        now = time.monotonic()
        if msg.topic == self.topics.events:
            self._peer_event(msg.payload)
            return True
        with self._cv:
            if msg.topic == self.topics.pair_leader:
                lease = Lease.parse(msg.payload) if msg.payload else None
                _LOGGER.debug("pair: lease %s (retained %s, dup %s)", lease, msg.retain, msg.duplicate)
                self.book.on_lease(lease, msg.retain, now)
            else:
                found = self.topics.pair_member_of(msg.topic)
                if found is None:
                    return False
                member, what = found
                text = msg.payload.decode("utf-8", "replace").strip()
                if what == "availability" and member == self.peer and text:
                    self.book.on_peer(text, not msg.retain, now)
                elif what == "sync" and member == self.me and text == self._token:
                    _LOGGER.debug("pair: marker back")
                    self.book.on_marker(now)
            self._cv.notify_all()
        return True

    def _peer_event(self, payload: bytes) -> None:
        try:
            event = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(event, dict) or event.get("member") == self.me:
            return
        with self._cv:
            self.shadow.on_event(event)

    # ---- the leadership thread --------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop_thread(self) -> None:
        self._stopping.set()
        with self._cv:
            self._cv.notify_all()
        if self._thread.is_alive():
            self._thread.join(5.0)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._decide()
            except Exception:  # keep deciding; the next tick tries again
                _LOGGER.exception("pair: deciding the role failed")
            with self._cv:
                self._cv.wait(TICK_S)

    def _decide(self) -> None:
        link, scheduler = self.link, self.scheduler
        if link is None or scheduler is None:
            return
        changed = False
        with self._cv:
            connected = link.connected
            if not connected and self.book.connected_at is not None:
                self.book.on_disconnected()
            decision = self.book.decide(time.monotonic(), connected, link.silent_for())
            if decision.role != self.role:
                b = self.book
                _LOGGER.debug("pair: %s -> %s (lease %s, synced %s, stale %s)", self.role, decision.role, b.lease,
                              b.synced_at, b.stale)  # fmt: skip
            if decision.claim is not None:
                _LOGGER.info("pair: claiming the lead (epoch %d)", decision.claim.epoch)
                link.publish_json(self.topics.pair_leader, decision.claim.payload(), qos=1, retain=True)
            old, new = self.role, decision.role
            if new != old:
                changed = True
                self.role = new
                self._transition(old, new, scheduler)
        if changed and self.on_change is not None:
            self.on_change()

    def _transition(self, old: str, new: str, scheduler: Scheduler) -> None:
        lease = self.book.lease
        epoch = lease.epoch if lease is not None else 0
        if new in LEADING and old not in LEADING:
            n = scheduler.resume_pending()
            _LOGGER.warning(
                "pair: %s leads now (epoch %d); resumed %d announcement(s) from the spool", self.me, epoch, n
            )
        elif old in LEADING and new not in LEADING:
            n = scheduler.release()
            leader = lease.member if lease is not None else "nobody"
            _LOGGER.warning(
                "pair: %s leads now (epoch %d); %s hands %d announcement(s) back", leader, epoch, self.me, n
            )
        elif new == FENCED:
            _LOGGER.warning("pair: the link to the broker is down: starting nothing new until it is back")
        elif old == FENCED:
            _LOGGER.info("pair: the broker answers again: starting announcements again")
        elif new == STANDBY:
            leader = lease.member if lease is not None else "nobody yet"
            _LOGGER.info("pair: %s is standby (leader: %s)", self.me, leader)
        scheduler.wake()

    def publish_member_status(self, status: dict[str, Any]) -> None:
        if self.link is not None:
            self.link.publish(self.topics.member_status(self.me), json_bytes(status), qos=1, retain=True)
