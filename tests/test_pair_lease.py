"""Who leads an active/standby pair: the decisions of ``LeaseBook`` from what a member observes (pure).

The real daemons under faults are ``tests/reliability/test_pair_failover.py``; here each rule is
walked through on a clock the test moves.
"""

from __future__ import annotations

import pytest

from announcer.integrations.pair.lease import (
    CLAIM_GRACE_S,
    FENCED,
    LEADER,
    OFFLINE,
    ONLINE,
    STANDBY,
    STARTING,
    Lease,
    LeaseBook,
    rank_of,
)
from announcer.mqtt.publisher import Deliveries

pytestmark = pytest.mark.unit  # the fast lane (make check)

K = 5.0  # keepalive
PT = 3.0  # peer_timeout


def book(me: str = "a", peer: str = "b", role: str = "auto") -> LeaseBook:
    return LeaseBook(me, peer, rank_of(me, peer, role), PT, K)


def connect(b: LeaseBook, now: float, lease: Lease | None, peer: str | None = ONLINE) -> None:
    """A connection whose retained state is in: the peer's availability, then the lease (or none)."""
    b.on_connected(now)
    if peer is not None:
        b.on_peer(peer, False, now)
    if lease is not None:
        b.on_lease(lease, True, now)
    else:
        b.on_marker(now)


def test_rank() -> None:
    assert rank_of("b3-a", "b3-b", "auto") == 0 and rank_of("b3-b", "b3-a", "auto") == 1
    assert rank_of("z", "a", "primary") == 0 and rank_of("a", "z", "standby") == 1


def test_the_first_start_the_first_by_rank_claims() -> None:
    first, second = book("a", "b"), book("b", "a")
    for b in (first, second):
        connect(b, 0.0, None, peer=None)
        assert b.decide(0.1, True, 0.0).role == STARTING  # no word on the lease yet: waits
    claim = first.decide(PT, True, 0.0).claim  # no retained lease: none, once the marker and PT passed
    assert claim == Lease("a", 1)
    assert second.decide(PT, True, 0.0).claim is None  # the other waits another peer_timeout
    second.on_peer(ONLINE, False, PT)  # the first said online once connected, before it claimed
    for b in (first, second):
        b.on_lease(claim, False, PT + 0.01)  # the claim as the broker orders it
    assert first.decide(PT + 0.02, True, 0.0).role == LEADER
    assert second.decide(PT + 0.02, True, 0.0).role == STANDBY
    assert second.decide(3 * PT, True, 0.0).claim is None  # sticky: nobody takes it from a live leader


def test_takeover_on_the_leaders_will_after_the_grace() -> None:
    b = book("b", "a")
    connect(b, 0.0, Lease("a", 4))
    assert b.decide(1.0, True, 0.0).role == STANDBY
    b.on_peer(OFFLINE, True, 10.0)  # the will, live
    assert b.decide(10.0 + CLAIM_GRACE_S / 2, True, 0.0).claim is None
    d = b.decide(10.0 + CLAIM_GRACE_S, True, 0.0)
    assert d.claim == Lease("b", 5) and d.role == STANDBY  # leads once the claim comes back
    assert b.decide(10.0 + CLAIM_GRACE_S + 0.5, True, 0.0).claim is None  # one claim at a time
    b.on_lease(Lease("b", 5), False, 11.2)
    assert b.decide(11.3, True, 0.0).role == LEADER


def test_a_broker_going_down_sends_every_will_and_nothing_is_claimed() -> None:
    b = book("b", "a")
    connect(b, 0.0, Lease("a", 4))
    b.on_peer(OFFLINE, True, 10.0)  # the broker shuts down: the leader's will, then our own link drops
    b.on_disconnected()
    assert b.decide(20.0, False, 10.0).claim is None
    # back up: the will is retained now; the leader has peer_timeout to say online again
    connect(b, 30.0, Lease("a", 4), peer=OFFLINE)
    assert b.decide(30.0 + PT - 0.1, True, 0.0).claim is None
    b.on_peer(ONLINE, False, 31.0)
    assert b.decide(40.0, True, 0.0).role == STANDBY and b.decide(40.1, True, 0.0).claim is None
    # had it not come back, the standby takes over after peer_timeout
    c = book("b", "a")
    connect(c, 30.0, Lease("a", 4), peer=OFFLINE)
    assert c.decide(30.0 + PT, True, 0.0).claim == Lease("b", 5)


def test_a_leader_is_fenced_and_steps_back_when_the_other_took_over() -> None:
    b = book()
    connect(b, 0.0, Lease("a", 7), peer=OFFLINE)
    assert b.decide(0.1, True, 0.0).role == LEADER
    assert b.decide(1.0, True, K + 0.1).role == FENCED  # no packet for the keepalive: start nothing new
    assert b.decide(1.1, True, 0.2).role == LEADER  # it answers again (no reconnect: the broker kept us)
    b.on_disconnected()
    assert b.decide(2.0, False, 1.0).role == LEADER  # link down for less than the keepalive: goes on
    assert b.decide(3.0, False, K + 1.0).role == FENCED
    b.on_connected(20.0)  # back; the CONNACK is fresh, but the lease is not in yet
    assert b.decide(20.0, True, 0.0).role == FENCED
    b.on_lease(Lease("b", 8), False, 20.1)  # live news from the backlog, then the broker's copy
    b.on_lease(Lease("b", 8), True, 20.2)
    assert b.decide(20.3, True, 0.0).role == STANDBY and not b.leading


def test_a_restarted_member_waits_for_the_peers_claim() -> None:
    b = book()
    connect(b, 0.0, Lease("a", 3))  # its own lease from the previous run, the peer online
    assert b.decide(PT - 0.1, True, 0.0).role == STANDBY
    b.on_lease(Lease("b", 4), False, 1.0)  # the peer saw its will and claimed
    assert b.decide(PT + 1.0, True, 0.0).role == STANDBY
    c = book()
    connect(c, 0.0, Lease("a", 3))
    assert c.decide(PT, True, 0.0).role == LEADER  # the peer did not claim: it leads again
    d = book()
    connect(d, 0.0, Lease("a", 3), peer=OFFLINE)
    assert d.decide(0.1, True, 0.0).role == LEADER  # the peer is gone: at once


def test_a_lost_or_older_lease_is_put_back_by_the_leader() -> None:
    b = book()
    connect(b, 0.0, Lease("a", 7), peer=OFFLINE)
    assert b.decide(0.1, True, 0.0).role == LEADER
    b.on_lease(Lease("b", 2), False, 1.0)  # older than one we saw: the broker lost its state
    d = b.decide(1.1, True, 0.0)
    assert d.role == LEADER and d.claim == Lease("a", 8)
    b.on_lease(Lease("a", 8), False, 1.2)  # back from the broker
    b.on_lease(None, False, 2.0)  # cleared
    assert b.decide(5.0, True, 0.0).claim == Lease("a", 9)


def test_lease_payloads() -> None:
    assert Lease.parse(b'{"member": "b3-a", "epoch": 4, "ts": "x"}') == Lease("b3-a", 4)
    for bad in (
        b"",
        b"nope",
        b"[]",
        b'{"member": "a"}',
        b'{"member": 1, "epoch": 2}',
        b'{"member": "a", "epoch": true}',
    ):
        assert Lease.parse(bad) is None
    assert set(Lease("a", 1).payload()) == {"member", "epoch", "ts"}


def test_deliveries_counts_acknowledgements_even_early_ones() -> None:
    d = Deliveries()
    assert d.all_acked()
    d.sent(1)
    d.sent(2)
    assert not d.all_acked()
    assert d.acked(1) is False and d.acked(2) is True and d.all_acked()
    assert d.acked(3) is False  # the PUBACK before the mid was registered
    d.sent(3)
    assert d.all_acked()
