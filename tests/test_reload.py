"""SIGHUP reload on the real daemon, with announcements queued while it happens.

Queues form behind speakers that hang for real: PortAudio devices on ALSA ``file`` PCMs
writing into FIFOs the test does not read yet (``alsa.FifoSpeakers``). Each
such speaker is "playing" a blocker, with more waiting behind it, when the reload comes;
reading the FIFOs afterwards lets everything play out.

* A valid new config: a speaker added (``c``) and one removed (``gone``), defaults and
  limits changed, an mqtt setting changed. Waiting announcements of the kept speaker all
  play; those of the removed speaker are ``cancelled`` (``speaker removed``) while the one
  it was playing finishes; new defaults and limits apply at once; the mqtt change is
  logged as needing a restart and the connection stays. ``RELOADING=1`` (with
  ``MONOTONIC_USEC``) then ``READY=1`` go to $NOTIFY_SOCKET.
* An invalid new config: every error logged on its own line, nothing changes (the queue
  plays out, the old default target still speaks).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alsa import FifoSpeakers
from broker import Broker
from daemon_proc import DaemonProc, Events, NotifySocket, new_id, unique_text, yaml_str  # noqa: F401

pytestmark = pytest.mark.timeout(180)

SHORT = "请注意。"


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[FifoSpeakers]:
    f = FifoSpeakers(tmp_path / "alsa", count=2)  # both paused: the speakers hang
    yield f
    f.close()


@pytest.fixture
def daemon(
    shared_broker: Broker,
    tmp_path: Path,
    announcer_cache: Path,
    fifo: FifoSpeakers,  # noqa: F811
    sd_socket: NotifySocket,
) -> Iterator[DaemonProc]:
    d = DaemonProc(
        shared_broker,
        tmp_path / "d",
        announcer_cache,
        env={**fifo.env, **sd_socket.env},
        speakers={"slow": fifo.speaker_yaml(1), "gone": fifo.speaker_yaml(2)},
        defaults={"targets": ["a"], "chime": False},
    )
    yield d
    d.close()


def say(client: Any, d: DaemonProc, target: str, ann_id: str, text: str = SHORT, **fields: Any) -> None:
    client.publish_json(d.topic("say", target), {"id": ann_id, "text": text, "chime": False, **fields})


def block(client: Any, d: DaemonProc, events: Events, speaker: str, waiting: int) -> tuple[str, list[str]]:
    """A blocker playing on ``speaker`` (hung) and ``waiting`` announcements queued behind it."""
    blocker = new_id(f"block-{speaker}")
    say(client, d, speaker, blocker, unique_text(1))
    events.wait(blocker, "started", speaker, timeout=30)
    ids = [new_id(f"{speaker}{i}") for i in range(waiting)]
    for ann_id in ids:
        say(client, d, speaker, ann_id)
        events.wait(ann_id, "queued", timeout=10)
    return blocker, ids


def test_valid_reload_applies_without_losing_the_queue(
    shared_broker: Broker, daemon: DaemonProc, fifo: FifoSpeakers, sd_socket: NotifySocket, tmp_path: Path
) -> None:
    d = daemon
    client = shared_broker.client()
    events = Events(client.collect(d.topic("events")))
    d.start()
    slow_blocker, slow_waiting = block(client, d, events, "slow", 3)
    gone_blocker, gone_waiting = block(client, d, events, "gone", 2)

    c_dir = tmp_path / "wav-c"
    d.extra_speakers = {"slow": fifo.speaker_yaml(1), "c": f"{{type: file, directory: {yaml_str(c_dir)}}}"}
    d.defaults = {"targets": ["c"], "chime": False}
    d.limits["max_text_chars"] = 100
    d.mqtt_overrides = {"keepalive": 20}
    d.rewrite()
    mark = len(d.this_run_log())
    t0 = time.monotonic()
    d.hup()
    line = d.wait_log("reload: applied", after=mark)
    assert "speakers added: c; removed: gone" in line and "engines loaded: none; kept: zh" in line, line
    assert "keepalive" in d.wait_log("reload: mqtt settings changed", after=mark)
    reloading = sd_socket.wait_for(lambda m: "RELOADING=1" in m.splitlines(), 5, since=t0)
    assert "MONOTONIC_USEC=" in reloading
    sd_socket.wait_for(lambda m: "READY=1" in m.splitlines(), 5, since=t0)

    # the removed speaker: what waited is cancelled, what plays goes on
    for ann_id in gone_waiting:
        cancelled = events.wait(ann_id, "cancelled", "gone", timeout=10)
        assert cancelled["reason"] == "speaker removed", cancelled
    # new defaults and limits at once
    plain = new_id("plain")
    client.publish_json(d.topic("say"), {"id": plain, "text": SHORT})
    events.wait(plain, "finished", "c", timeout=30)
    assert (c_dir / f"{plain}.wav").is_file()
    client.publish(d.topic("say"), ("请" * 150).encode())
    rejected = events.messages.wait_for(lambda m: m.json()["state"] == "rejected", 10).json()
    assert rejected["reason"] == "oversize" and "100" in rejected["error"], rejected

    # the speakers take samples again: nothing queued before the reload was lost
    fifo.readers[1].pace(None)
    fifo.readers[2].pace(None)
    done = events.wait_done([slow_blocker, *slow_waiting], ("slow",), timeout=60)
    assert all(done[(i, "slow")]["state"] == "finished" for i in [slow_blocker, *slow_waiting]), events.dump()
    assert events.order("finished", "slow") == [slow_blocker, *slow_waiting]
    assert events.wait(gone_blocker, "finished", "gone", timeout=30)
    # the connection stayed: no second connect in this run's log
    assert d.this_run_log().count("connected to mqtt://") == 1, d.log_tail(60)
    assert d.stop() == 0, d.log_tail()
    assert "Traceback" not in d.log(), d.log_tail(80)


def test_invalid_reload_logs_every_error_and_changes_nothing(
    shared_broker: Broker, daemon: DaemonProc, fifo: FifoSpeakers, sd_socket: NotifySocket
) -> None:
    d = daemon
    client = shared_broker.client()
    events = Events(client.collect(d.topic("events")))
    d.start()
    blocker, waiting = block(client, d, events, "slow", 2)
    good = d.config_path.read_text(encoding="utf-8")
    bad = good.replace("  a: {type: file,", "  a: {type: file, colour: red,")
    bad = bad.replace("max_text_chars: 400", "max_text_chars: 0")
    bad += "bogus_section: 1\n"
    assert bad != good
    d.config_path.write_text(bad, encoding="utf-8")
    mark = len(d.this_run_log())
    t0 = time.monotonic()
    d.hup()
    head = d.wait_log("is invalid", after=mark)
    assert "is invalid (3 error(s)); the running config stays in force" in head, d.log_tail()
    d.wait_log("reload: bogus_section: unknown key", after=mark)
    d.wait_log("reload: speakers.a.colour: unknown key", after=mark)
    d.wait_log("reload: limits.max_text_chars: Input should be greater than or equal to 1", after=mark)
    sd_socket.wait_for(lambda m: "READY=1" in m.splitlines(), 5, since=t0)

    # the old config is in force: the old default target speaks, the queue plays out
    plain = new_id("plain")
    client.publish_json(d.topic("say"), {"id": plain, "text": SHORT})
    events.wait(plain, "finished", "a", timeout=30)
    fifo.readers[1].pace(None)
    done = events.wait_done([blocker, *waiting], ("slow",), timeout=60)
    assert all(done[(i, "slow")]["state"] == "finished" for i in [blocker, *waiting]), events.dump()

    # and a good file is taken again afterwards
    d.config_path.write_text(good, encoding="utf-8")
    mark = len(d.this_run_log())
    d.hup()
    d.wait_log("reload: applied", after=mark)
    assert d.stop() == 0, d.log_tail()
    assert "Traceback" not in d.log(), d.log_tail(80)
