"""sd_notify end to end: the real daemon talking to a datagram socket bound by the test.

* ``READY=1`` comes only once the broker acknowledged the subscriptions: started with
  the broker down, the daemon loads its engines and pings the watchdog but says nothing
  about readiness; the broker comes up and ``READY=1`` follows. ``STATUS=`` lines carry
  the broker state, the queue depth and who speaks; ``STOPPING=1`` on SIGTERM.
* Watchdog (``WATCHDOG_USEC=1000000``: a ping every 0.5 s): pings while healthy, none
  while a player is stuck for real in a sink write. The sink is a PortAudio device on an
  ALSA ``file`` plugin writing into a FIFO nobody reads (``alsa.FifoSpeakers``):
  the write blocks inside PortAudio once the pipe is full, as with a sound card that
  stopped taking samples. Reading the FIFO again unblocks it and the pings resume.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alsa import FifoSpeakers
from broker import Broker
from daemon_proc import DaemonProc, Events, NotifySocket, new_id, unique_text  # noqa: F401

from announcer.service.sd_notify import notify, watchdog_interval

pytestmark = pytest.mark.timeout(150)


# ---------------------------------------------------------------------------- in process
def test_notify_sends_one_datagram_and_reads_the_watchdog_period(
    sd_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False  # not under systemd: nothing to do
    monkeypatch.setenv("NOTIFY_SOCKET", sd_socket.env["NOTIFY_SOCKET"])
    assert notify("STATUS=hello\nREADY=1") is True
    assert sd_socket.wait_for(lambda m: m == "STATUS=hello\nREADY=1", 2)

    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", str(__import__("os").getpid()))
    assert watchdog_interval() == 15.0


# ---------------------------------------------------------------------------- end to end
def test_ready_only_after_the_subscription_then_status_and_stopping(
    broker_factory: Any,
    tmp_path: Path,
    announcer_cache: Path,
    sd_socket: NotifySocket,  # noqa: F811
    closing: Callable[[Any], Any],
) -> None:
    broker: Broker = broker_factory(start=False)  # nothing listens yet
    d = DaemonProc(broker, tmp_path / "d", announcer_cache, env={**sd_socket.env, "WATCHDOG_USEC": "1000000"})
    closing(d)
    d.spawn()
    d.wait_log("engine zh (embedded-zh) ready", timeout=60)
    d.wait_log("cannot connect to mqtt://", timeout=20)
    time.sleep(2.0)
    assert not [m for m in sd_socket.messages() if "READY=1" in m.splitlines()], sd_socket.messages()
    assert len(sd_socket.times("WATCHDOG=1")) >= 2, "healthy while waiting for the broker: pings expected"

    broker.start()
    up = time.monotonic()
    sd_socket.wait_for(lambda m: "READY=1" in m.splitlines(), 20, since=up)
    d.wait_log("ready: subscribed on", timeout=5)
    status = sd_socket.wait_for(lambda m: m.startswith("STATUS=") and "broker connected" in m, 10)
    assert "queue 0" in status and "speaking none" in status, status

    client = broker.client()
    events = Events(client.collect(d.topic("events")))
    ann = new_id("st")
    client.publish_json(d.topic("say"), {"id": ann, "text": unique_text(2), "chime": False})
    events.wait(ann, "finished", "a", timeout=30)
    assert [m for m in sd_socket.messages() if m.startswith("STATUS=") and "speaking a" in m], sd_socket.messages()

    assert d.stop() == 0, d.log_tail()
    assert "STOPPING=1" in [line for m in sd_socket.messages() for line in m.splitlines()]
    assert "Traceback" not in d.log(), d.log_tail(80)


def test_watchdog_pings_only_while_every_player_makes_progress(
    shared_broker: Broker,
    tmp_path: Path,
    announcer_cache: Path,
    sd_socket: NotifySocket,  # noqa: F811
    closing: Callable[[Any], Any],
) -> None:
    fifo = FifoSpeakers(tmp_path / "alsa", count=1)
    reader = fifo.readers[1]
    reader.pace(None)
    d = DaemonProc(
        shared_broker,
        tmp_path / "d",
        announcer_cache,
        env={**sd_socket.env, **fifo.env, "WATCHDOG_USEC": "1000000"},
        speakers={"slow": fifo.speaker_yaml(1)},
    )
    closing(d)
    client = shared_broker.client()
    events = Events(client.collect(d.topic("events")))
    try:
        d.start()
        # healthy and idle: a ping about every 0.5 s
        t0 = time.monotonic()
        time.sleep(2.0)
        assert len(sd_socket.times("WATCHDOG=1", since=t0)) >= 3

        # the speaker stops taking samples: the player blocks in PortAudio's write for real
        reader.pause()
        ann = new_id("hang")
        client.publish_json(d.topic("say", "slow"), {"id": ann, "text": unique_text(3), "chime": False})
        events.wait(ann, "started", "slow", timeout=30)
        line = d.wait_log("watchdog: not pinging systemd", timeout=20)
        assert "speaker slow: stuck in the sink's write" in line, line
        silent_from = time.monotonic()
        time.sleep(2.5)
        assert sd_socket.times("WATCHDOG=1", since=silent_from) == [], "pinged while a player was stuck"
        assert sd_socket.wait_for(lambda m: m.startswith("STATUS=unhealthy: speaker slow"), 1)

        # the speaker takes samples again: the announcement finishes and the pings come back
        reader.pace(None)
        resumed = time.monotonic()
        d.wait_log("watchdog: healthy again", timeout=10)
        events.wait(ann, "finished", "slow", timeout=60)
        time.sleep(1.5)
        assert len(sd_socket.times("WATCHDOG=1", since=resumed)) >= 2
        assert d.stop() == 0, d.log_tail()
        assert "Traceback" not in d.log(), d.log_tail(80)
    finally:
        d.close()
        fifo.close()
