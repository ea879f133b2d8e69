"""``type: wyoming`` with a ``command``: the daemon runs the Wyoming server itself
(announcer/engines/managed.py, the supervisor the ``sambert`` type uses).

The managed server is announcer's own (``python -m announcer.wyoming_server``) with the
espeak engine, started after a short ``sleep`` so "not ready yet" lasts long enough to
be seen; the fallback is the embedded-zh voice. In process: declarations stay at their
defaults (without blocking) until the server is ready and then come from ``describe``,
synthesis through it, kill -9 -> fallback with the warning -> restarted, ``close`` stops
it. End to end: the real daemon, ``P/status`` engine states, the fallback's ``started``
event and the server gone after the daemon stopped.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from broker import Broker
from daemon_proc import new_id  # noqa: F401
from standins import harness as h
from test_managed_engine import ManagedDaemon, States, alive, children, status_engines, wait_dead

from announcer.config import ConfigError, parse_config
from announcer.core.emotions import EMOTIONS
from announcer.engines.base import Style, create_engine
from announcer.engines.wyoming import ManagedWyomingEngine, WyomingEngine
from announcer.playback.synthesizer import Synthesizer, SynthStats

pytestmark = pytest.mark.timeout(180)

START_DELAY = 1.5  # seconds the command waits before it execs the server


def server_cmd(tmp: Path, port: int) -> list[str]:
    """announcer's Wyoming server with espeak, as a user would configure it (after a short sleep)."""
    config = tmp / "server.yaml"
    config.write_text(
        f"engines: {{en: {{type: espeak}}}}\ncache: {{directory: {json.dumps(str(tmp / 'cache'))}}}\n", encoding="utf-8"
    )
    return [
        "sh",
        "-c",
        f'sleep {START_DELAY} && exec "$0" "$@"',
        sys.executable,
        "-m",
        "announcer.wyoming_server",
        "-c",
        str(config),
        "--port",
        str(port),
    ]


def engines(tmp: Path, **keys: Any) -> dict[str, Any]:
    port = h.free_port()
    cfg = parse_config(
        json.dumps(
            {
                "engines": {
                    "zh": {"type": "embedded-zh"},
                    "remote": {
                        "type": "wyoming",
                        "uri": f"tcp://127.0.0.1:{port}",
                        "command": server_cmd(tmp, port),
                        "fallback": "zh",
                        "restart_delay": 0.3,
                        "restart_max_delay": 2.0,
                        "start_timeout": 60,
                        **keys,
                    },
                }
            }
        )
    )
    return {name: create_engine(name, c, tmp / "engine-cache") for name, c in cfg.engines.items()}


def render(synth: Synthesizer, text: str = "Platform two.") -> SynthStats:
    stats = SynthStats()
    audio = synth.render_all(text, "remote", Style("happy", 1.0), None, stats)
    assert audio.duration > 0.2
    return stats


NOT_READY = ["engine remote is not ready; spoken by zh"]


def test_start_ready_synthesis_crash_fallback_restart_stop(tmp_path: Path) -> None:
    engs = engines(tmp_path)
    eng = engs["remote"]
    assert isinstance(eng, ManagedWyomingEngine)
    synth = Synthesizer(engs)
    states = States()
    eng.start(on_change=states)
    try:
        # not ready: declarations at their defaults, at once; announcements spoken by the fallback
        t0 = time.monotonic()
        eng.load()
        assert (eng.voices, eng.emotions, eng.sample_rate, eng.languages) == (
            ("default",),
            ("neutral",),
            22050,
            ("und",),
        )
        assert eng.describe()["managed"] is True
        assert time.monotonic() - t0 < 0.5 and not eng.ready
        stats = render(synth)
        assert stats.engine == "zh" and stats.warnings == NOT_READY

        # ready: declarations from describe / the probe, spoken by the server
        states.wait("ready")
        assert eng.state == "ready" and eng.ready
        assert "default" not in eng.voices and eng.emotions == EMOTIONS and "en" in ",".join(eng.languages)
        stats = render(synth)
        assert stats.engine is None and stats.event_fields() == {}
        audio = eng.synthesize_clause("Hello.", Style("sad", 1.0))
        assert len(audio) > 0.2 * eng.sample_rate

        # kill -9: down, the fallback speaks with the warning, restarted after the back-off
        assert eng.supervisor is not None
        first = eng.supervisor.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        states.wait("down")
        stats = render(synth)
        assert stats.engine == "zh" and stats.warnings == NOT_READY
        states.wait("ready", 2)
        second = eng.supervisor.pid
        assert second is not None and second != first and not alive(first)
        assert eng.supervisor.restarts == 1
        assert states.names()[:5] == ["starting", "ready", "down", "starting", "ready"]
        assert render(synth).engine is None
    finally:
        eng.close()
    assert states.names()[-1] == "stopped" and eng.state == "down"
    assert wait_dead(second)


def test_one_shot_load_starts_the_server_and_close_stops_it(tmp_path: Path) -> None:
    eng = engines(tmp_path)["remote"]
    assert eng.emotions == EMOTIONS  # a declaration asked first (say --out): starts it and waits
    try:
        assert isinstance(eng, ManagedWyomingEngine) and eng.supervisor is not None
        pid = eng.supervisor.pid
        assert pid is not None and alive(pid) and eng.state == "ready"
    finally:
        eng.close()
    assert wait_dead(pid)


def test_without_command_it_is_the_plain_engine() -> None:
    cfg = parse_config('engines: {remote: {type: wyoming, uri: "tcp://127.0.0.1:9"}}')
    eng = create_engine("remote", cfg.engines["remote"])
    assert type(eng) is WyomingEngine
    assert not eng.supervised and not eng.may_fall_back  # no fallback, no process: loaded by the daemon
    assert repr(cfg.engines["remote"]) == (
        "Config(type='wyoming', uri='tcp://127.0.0.1:9', voice=None, speaker=None, timeout=30.0, emotion_voices=None)"
    )  # same cache keys


def test_config_errors() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(
            'engines: {zh: {type: embedded-zh}, r: {type: wyoming, uri: "tcp://h:1", fallback: zh, restart_delay: 2}}'
        )
    why = "only with command: a wyoming engine without one is not supervised and does not fall back (line 1)"
    assert err.value.errors == [f"engines.r.fallback: {why}", f"engines.r.restart_delay: {why}"]
    with pytest.raises(ConfigError) as err:
        parse_config('engines: {r: {type: wyoming, uri: "tcp://h:1", command: [], fallback: nope}}')
    empty = "an empty command: give the program and its arguments, or leave command out (line 1)"
    assert err.value.errors == [f"engines.r.command: {empty}"]  # and nothing about the keys that need one
    with pytest.raises(ConfigError) as err:
        parse_config(
            'engines: {zh: {type: embedded-zh}, r: {type: wyoming, uri: "tcp://h:1", command: [x], fallback: nope}}'
        )
    assert err.value.errors == ["engines.r.fallback: 'nope' is not another engine (have: zh) (line 1)"]


def test_daemon_manages_the_server(tmp_path: Path, shared_broker: Broker, announcer_cache: Path) -> None:  # noqa: F811
    port = h.free_port()
    d = ManagedDaemon(
        shared_broker,
        tmp_path / "daemon",
        announcer_cache,
        command=server_cmd(tmp_path, port),
        port=port,
        name="remote",
        engine={"type": "wyoming"},
        defaults={"targets": ["a"], "chime": False},
    )
    client = shared_broker.client()
    events = client.collect(d.topic("events"))
    d.start()
    new_pid = None
    try:
        st = client.collect(d.topic("status")).wait_for(lambda m: "engines" in m.json(), 20).json()
        assert st["engines"]["remote"] == "starting", st
        first = new_id("fb")
        client.publish_json(
            d.topic("say"), {"id": first, "text": "火警，请立即撤离。", "engine": "remote", "priority": "emergency"}
        )
        started = events.wait_for(lambda m: m.json()["id"] == first and m.json()["state"] == "started", 30).json()
        assert started["engine"] == "zh" and started["fallback"] is True and started["warnings"] == NOT_READY

        status_engines(client, d, "ready", name="remote")
        second = new_id("ok")
        client.publish_json(d.topic("say"), {"id": second, "text": "Platform two.", "engine": "remote"})
        started = events.wait_for(lambda m: m.json()["id"] == second and m.json()["state"] == "started", 30).json()
        assert "fallback" not in started and "engine" not in started
        events.wait_for(lambda m: m.json()["id"] == second and m.json()["state"] == "finished", 30)

        assert d.proc is not None
        (server_pid,) = children(d.proc.pid)
        os.kill(server_pid, signal.SIGKILL)
        status_engines(client, d, "starting", 20, name="remote")
        third = new_id("down")
        client.publish_json(d.topic("say"), {"id": third, "text": "Gate three.", "engine": "remote"})
        started = events.wait_for(lambda m: m.json()["id"] == third and m.json()["state"] == "started", 30).json()
        assert started["fallback"] is True and started["warnings"] == NOT_READY
        status_engines(client, d, "ready", name="remote")
        (new_pid,) = children(d.proc.pid)
        assert new_pid != server_pid
        assert f"process {server_pid} exited with code -9" in d.log()
    finally:
        code = d.stop()
    assert code == 0, d.log_tail()
    assert new_pid is not None and wait_dead(new_pid), "the server outlived the daemon"
