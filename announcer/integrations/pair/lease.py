"""Who leads an active/standby pair: the decisions, from what one member knows (pure: no MQTT, no threads).

The mechanism is the broker's: a retained lease ``P/pair/leader`` = ``{"member", "epoch", "ts"}``
and each member's retained availability ``P/pair/<member>/availability`` with its last will
``offline``. The single broker orders every update of the lease, so both members see the same
sequence. docs/fleet.md says why this and not shared subscriptions or keepalived.

Rules:

* **Sticky**: a member leads while the lease names it; nobody takes the lead from a live leader.
* **Takeover**: the standby claims (publishes the lease with ``epoch + 1`` naming itself) when
  the leader's availability turns ``offline`` *live* (its will: killed, or the broker timed it
  out) and the standby's own connection stayed up for ``CLAIM_GRACE_S`` after that (a broker
  that shuts down sends every will, then drops everyone: the standby's link drops too, and
  nothing is claimed). An ``offline`` found *retained* (the leader was gone before we
  connected, or the broker restarted), or no word at all, is given ``peer_timeout`` to turn
  ``online`` before the claim. A claim counts once it comes back from the broker.
* **Knowing the lease**: after every connect a member decides nothing until the broker's
  retained copy of the lease came (retained messages follow the subscription; a backlog of
  queued messages may come first), or, when there is none, until its own marker
  (``P/pair/<me>/sync``) came back and ``peer_timeout`` passed.
* **Nobody leads yet** (the first start): the first by rank (``pair.role: primary``, or with
  ``auto`` the member whose client id sorts first) claims at once (after ``peer_timeout`` when
  the peer is online), the other after another ``peer_timeout``.
* **A restarted member** finding a lease that names it (its previous run) waits ``peer_timeout``
  for the peer's claim (which the peer makes on seeing its will) before it leads again, unless
  the peer is offline.
* **Fencing**: a leader that heard nothing from the broker for ``keepalive`` seconds (``FENCED``)
  starts nothing new; what plays goes on. The broker publishes its will only 1.5 x keepalive
  after its last packet, so it is fenced before the standby can claim. Connected again, it
  stays fenced until the retained lease is in (it may name the other member by then).
* **A stale lease** (an epoch lower than one already seen: the broker lost its state) is
  replaced by the leader with a new one; a lost lease likewise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ...core.events import utc_ts

STARTING, STANDBY, LEADER, FENCED = "starting", "standby", "leader", "fenced"
ONLINE, OFFLINE = "online", "offline"
CLAIM_GRACE_S = 1.0  # the standby's link must stay up this long after the leader's will
CLAIM_ECHO_S = 3.0  # a claim not back from the broker by then may be made again


@dataclass(frozen=True)
class Lease:
    member: str
    epoch: int

    def payload(self) -> dict[str, Any]:
        return {"member": self.member, "epoch": self.epoch, "ts": utc_ts()}

    @staticmethod
    def parse(data: bytes) -> Lease | None:
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(obj, dict):
            return None
        member, epoch = obj.get("member"), obj.get("epoch")
        if not isinstance(member, str) or not member or not isinstance(epoch, int) or isinstance(epoch, bool):
            return None
        return Lease(member, epoch)


@dataclass(frozen=True)
class Decision:
    role: str  # starting | standby | leader | fenced
    claim: Lease | None = None  # publish this lease (retained)


def rank_of(me: str, peer: str, role: str) -> int:
    """0: claims first when nobody leads; 1: waits ``peer_timeout``."""
    if role == "primary":
        return 0
    if role == "standby":
        return 1
    return 0 if me < peer else 1


class LeaseBook:
    """What a member knows of the pair; ``decide`` turns it into its role (and a claim to publish)."""

    def __init__(self, me: str, peer: str, rank: int, peer_timeout: float, keepalive: float) -> None:
        self.me = me
        self.peer = peer
        self.rank = rank
        self.peer_timeout = peer_timeout
        self.keepalive = keepalive
        self.lease: Lease | None = None
        self.top_epoch = 0
        self.peer_state: str | None = None  # online | offline | None (no word)
        self.peer_offline_live: float | None = None  # when a live "offline" (a will) came
        self.synced_at: float | None = None  # this connection's retained state is in
        self.ever_synced = False
        self.connected_at: float | None = None
        self.marker_at: float | None = None  # our marker came back on this connection
        self.leading = False  # took the lead in this process (and did not lose it)
        self.claimed: tuple[Lease, float] | None = None  # a claim not yet back from the broker
        self.my_epochs: set[int] = set()  # the epochs this process claimed
        self.stale = False  # the broker holds an older lease than one we saw: the leader replaces it
        self.fenced = False  # a leader that lost the link: fenced until it is synced again

    # ---- what the member observes --------------------------------------------------------
    def on_lease(self, lease: Lease | None, retained: bool, now: float) -> None:
        """A lease message; ``retained``: the broker's copy, sent because we subscribed (this connection)."""
        if retained and self.connected_at is not None and self.synced_at is None:
            self._synced(now)
        if lease is not None and lease.epoch < self.top_epoch:
            self.stale = True  # the broker lost what it had: the leader puts a new one (see decide)
            return
        self.stale = False
        self.lease = lease
        if lease is not None:
            self.top_epoch = lease.epoch
            if self.claimed is not None and lease.epoch >= self.claimed[0].epoch:
                self.claimed = None

    def on_peer(self, state: str, live: bool, now: float) -> None:
        self.peer_state = state
        self.peer_offline_live = now if state == OFFLINE and live and self.synced_at is not None else None

    def on_marker(self, now: float) -> None:
        self.marker_at = now

    def on_connected(self, now: float) -> None:
        self.on_disconnected()
        self.connected_at = now

    def on_disconnected(self) -> None:
        self.synced_at = self.connected_at = self.marker_at = None
        self.peer_offline_live = None  # a will seen just before our own link dropped: a broker going down

    def _synced(self, now: float) -> None:
        self.synced_at = now
        self.ever_synced = True

    def _check_synced(self, now: float) -> None:
        """No retained lease came on this connection: there is none, once our marker is back and
        ``peer_timeout`` passed (a backlog of queued messages may hold the broker's copy back that long)."""
        if self.synced_at is None and self.marker_at is not None and self.connected_at is not None:
            if now - self.connected_at >= self.peer_timeout:
                self._synced(now)

    # ---- the decision ----------------------------------------------------------------------
    def decide(self, now: float, connected: bool, silent_for: float) -> Decision:
        if connected:
            self._check_synced(now)
        if not connected or self.synced_at is None:
            if not self.leading:
                return Decision(STANDBY if self.ever_synced else STARTING)
            # a leader that lost the link goes on for up to the keepalive (the broker may only be
            # restarting); once fenced, or back on the link, it starts nothing until it knows it
            # still leads (the retained lease). (A CONNACK is a packet: silent_for alone would
            # unfence it a moment before the link says connected.)
            if connected or self.fenced or silent_for > self.keepalive:
                self.fenced = True
                return Decision(FENCED)
            return Decision(LEADER)
        self.fenced = False
        lease = self.lease
        if lease is not None and lease.member == self.me and not self.stale:
            if not self.leading and lease.epoch not in self.my_epochs and self._held_after_restart(now):
                return Decision(STANDBY)
            self.leading = True
            return Decision(self._leading_role(silent_for))
        if self.leading and lease is not None and lease.member != self.me:
            self.leading = False  # the peer took over while we were cut off: hand everything back
            return Decision(STANDBY)
        if self.leading:  # the lease is gone or older than ours (a broker that lost its state): put ours back
            again = self.stale or lease is None
            claim = self._claim(now) if again and not self._claim_pending(now) else None
            return Decision(self._leading_role(silent_for), claim)
        return Decision(STANDBY, self._claim(now) if self._should_claim(now, lease) else None)

    def _leading_role(self, silent_for: float) -> str:
        return FENCED if silent_for > self.keepalive else LEADER

    def _held_after_restart(self, now: float) -> bool:
        """A lease naming us from a previous run while the peer may be up: give the peer time to claim."""
        assert self.synced_at is not None
        return self.peer_state != OFFLINE and now - self.synced_at < self.peer_timeout

    def _claim_pending(self, now: float) -> bool:
        return self.claimed is not None and now - self.claimed[1] < CLAIM_ECHO_S

    def _should_claim(self, now: float, lease: Lease | None) -> bool:
        assert self.synced_at is not None
        if self._claim_pending(now):
            return False
        waited = now - self.synced_at
        if lease is None:  # the first start (nobody ever led): the first by rank, then the other
            return self.rank == 0 and self.peer_state != ONLINE or waited >= self.peer_timeout * (1 + self.rank)
        if lease.member != self.peer:  # a member we do not know: as if nobody led
            return waited >= self.peer_timeout
        if self.peer_state == ONLINE:
            return False
        if self.peer_offline_live is not None:
            return now - self.peer_offline_live >= CLAIM_GRACE_S
        return waited >= self.peer_timeout

    def _claim(self, now: float) -> Lease:
        lease = Lease(self.me, self.top_epoch + 1)
        self.claimed = (lease, now)
        self.my_epochs.add(lease.epoch)
        return lease
