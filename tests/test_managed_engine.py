"""Managed engine processes (announcer/engines/managed.py) with a real child: the Sambert worker.

The worker runs on a Python 3.8-3.10 interpreter with the stand-in modelscope of
tests/standins (not the real model; see tests/standins/README.md). The stand-in's tone
is at 200 Hz for zhitian_emo, so "spoken by Sambert" and "spoken by the fallback"
(embedded-zh speech) can be told apart in the audio too.

In process: start, ready, kill -9 -> down -> restarted after a back-off that grows,
fallback while not ready (Synthesizer), SIGTERM then SIGKILL on stop. End to end: the
real daemon with a broker, ``P/status`` engine states, the ``started`` event of an
announcement spoken by the fallback during the downtime, and the worker gone after the
daemon stopped.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from broker import Broker
from daemon_proc import DaemonProc, new_id  # noqa: F401
from standins import harness as h

from announcer.config import parse_config
from announcer.core.errors import EngineUnavailable
from announcer.engines.base import Style, create_engine
from announcer.engines.sambert import SambertEngine
from announcer.engines.supervised import ManagedProcess
from announcer.playback.synthesizer import Synthesizer, SynthStats

pytestmark = pytest.mark.timeout(180)


def worker_cmd(py: str, tmp: Path, port: int, model: Path | None = None, **env: str) -> list[str]:
    """The worker command as a user would configure it: ``env`` sets its environment."""
    model = model or h.make_model_dir(tmp / "model")
    wenv = h.worker_env(tmp, **env)
    assigns = [f"{k}={wenv[k]}" for k in wenv if k == "PYTHONPATH" or k.startswith("SAMBERT_STANDIN")]
    return ["env", *assigns, *h.worker_command(py, model, f"tcp://127.0.0.1:{port}")]


def sambert_engine(py: str, tmp: Path, **config: Any) -> SambertEngine:
    port = h.free_port()
    env = config.pop("env", {})
    cfg = parse_config(
        json.dumps(
            {
                "engines": {
                    "zh": {"type": "embedded-zh"},
                    "sambert": {
                        "type": "sambert",
                        "uri": f"tcp://127.0.0.1:{port}",
                        "fallback": "zh",
                        "command": worker_cmd(py, tmp, port, **env),
                        "restart_delay": 0.3,
                        "restart_max_delay": 2.0,
                        "start_timeout": 60,
                        **config,
                    },
                }
            }
        )
    )
    eng = create_engine("sambert", cfg.engines["sambert"])
    assert isinstance(eng, SambertEngine)
    return eng


class States:
    def __init__(self) -> None:
        self.seen: list[tuple[float, str]] = []
        self.cond = threading.Condition()

    def __call__(self, _name: str, state: str) -> None:
        with self.cond:
            self.seen.append((time.monotonic(), state))
            self.cond.notify_all()

    def wait(self, state: str, count: int = 1, timeout: float = 60.0) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: sum(s == state for _, s in self.seen) >= count, timeout)
        assert ok, f"never {count}x {state}: {self.seen}"

    def names(self) -> list[str]:
        return [s for _, s in self.seen]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()
    except FileNotFoundError:
        return False


def wait_dead(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


# ----------------------------------------------------------------------------- in process
def test_start_ready_crash_restart_stop(worker_py: str, tmp_path: Path) -> None:
    eng = sambert_engine(worker_py, tmp_path)
    states = States()
    eng.start(on_change=states)
    try:
        assert not eng.ready or eng.state == "ready"
        states.wait("ready")
        assert eng.ready and eng.state == "ready"
        eng.load()  # supervised: never blocks, never raises
        audio = eng.synthesize_clause("你好。", Style("happy", 1.0), "zhitian_emo")
        assert len(audio) == round(h.EMOTION_SECONDS["happy"] * 16000)
        assert h.dominant_hz(audio, 16000) == pytest.approx(200, abs=10)
        assert eng.supervisor is not None
        first = eng.supervisor.pid
        assert first is not None

        os.kill(first, signal.SIGKILL)
        states.wait("down")
        states.wait("ready", 2)
        second = eng.supervisor.pid
        assert second != first and not alive(first)
        assert eng.supervisor.restarts == 1
        assert states.names()[:5] == ["starting", "ready", "down", "starting", "ready"]
        down_at = [t for t, s in states.seen if s == "down"][0]
        restart_at = [t for t, s in states.seen if s == "starting"][1]
        assert restart_at - down_at >= 0.25  # restart_delay 0.3 s
    finally:
        eng.close()
    assert eng.state == "down" and states.names()[-1] == "stopped"
    assert wait_dead(second)


def test_backoff_grows_up_to_the_maximum_and_keeps_the_last_line(worker_py: str, tmp_path: Path) -> None:
    port = h.free_port()
    command = worker_cmd(worker_py, tmp_path, port, model=tmp_path / "no-model")
    states = States()
    proc = ManagedProcess(
        "broken", command, probe=lambda: False, restart_delay=0.2, restart_max_delay=0.8, on_change=states
    )
    proc.start()
    try:
        states.wait("starting", 6, timeout=30)
    finally:
        proc.stop()
    starts = [t for t, s in states.seen if s == "starting"]
    downs = [t for t, s in states.seen if s == "down"]
    waits = [round(start - down, 1) for down, start in zip(downs, starts[1:])]
    assert waits[:5] == [0.2, 0.4, 0.8, 0.8, 0.8], waits
    assert "model directory missing" in proc.last_line
    assert proc.state == "stopped"


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    stubborn = [
        sys.executable,
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)",
    ]
    proc = ManagedProcess("stubborn", stubborn, probe=lambda: True, stop_timeout=0.5)
    proc.start()
    assert proc.wait_ready(10)
    pid = proc.pid
    assert pid is not None
    time.sleep(0.3)  # let it install its SIGTERM handler
    t0 = time.monotonic()
    proc.stop()
    assert 0.4 <= time.monotonic() - t0 < 5
    assert wait_dead(pid, 5)


def test_fallback_while_not_ready_then_the_engine_itself(worker_py: str, tmp_path: Path) -> None:
    eng = sambert_engine(worker_py, tmp_path, env={"SAMBERT_STANDIN_LOAD_SECONDS": "3"})
    zh = create_engine("zh", parse_config("engines: {zh: {type: embedded-zh}}").engines["zh"])
    synth = Synthesizer({"zh": zh, "sambert": eng})
    states = States()
    eng.start(on_change=states)
    try:
        assert eng.state == "starting" and not eng.ready
        stats = SynthStats()
        audio = synth.render_all("请注意，三号门。", "sambert", Style("happy", 1.0), "zhiyan_emo", stats)
        assert stats.engine == "zh" and stats.warnings == ["engine sambert is not ready; spoken by zh"]
        assert stats.event_fields() == {
            "engine": "zh",
            "fallback": True,
            "warnings": ["engine sambert is not ready; spoken by zh"],
        }
        assert audio.sample_rate == 16000 and audio.duration > 0.5  # resampled to the rate asked for
        assert abs(h.dominant_hz(audio.samples, 16000) - 200) > 20  # speech, not the stand-in's tone

        states.wait("ready")
        stats = SynthStats()
        audio = synth.render_all("请注意。", "sambert", Style("happy", 1.0), "zhitian_emo", stats)
        assert stats.engine is None and stats.event_fields() == {}
        assert h.dominant_hz(audio.samples, 16000) == pytest.approx(200, abs=10)
    finally:
        eng.close()


def test_fallback_when_the_engine_fails_mid_request(worker_py: str, tmp_path: Path) -> None:
    """Unmanaged, unreachable: the first clause fails, the whole text is spoken by the fallback."""
    cfg = parse_config(
        json.dumps(
            {
                "engines": {
                    "zh": {"type": "embedded-zh"},
                    "sambert": {"type": "sambert", "uri": f"tcp://127.0.0.1:{h.free_port()}", "timeout": 2},
                }
            }
        )
    )
    synth = Synthesizer({n: create_engine(n, c) for n, c in cfg.engines.items()})
    stats = SynthStats()
    with pytest.raises(EngineUnavailable):
        synth.engines["sambert"].load()  # unmanaged and nobody listens: unavailable
    audio = synth.render_all("火警，请立即撤离。", "sambert", Style("fearful", 1.0), None, stats)
    assert audio.duration > 0.5 and stats.engine == "zh"
    assert stats.warnings[0].startswith("engine sambert failed (") and stats.warnings[0].endswith("spoken by zh")


def test_one_shot_load_starts_the_worker_and_close_stops_it(worker_py: str, tmp_path: Path) -> None:
    eng = sambert_engine(worker_py, tmp_path)
    eng.load()  # announcer say / announcer engines: start, wait until ready
    try:
        assert eng.state == "ready" and eng.supervisor is not None
        pid = eng.supervisor.pid
        assert pid is not None and alive(pid)
    finally:
        eng.close()
    assert wait_dead(pid)


def test_config_errors() -> None:
    from announcer.config import ConfigError

    with pytest.raises(ConfigError) as err:
        parse_config('engines: {s: {type: sambert, voice: nobody, command: [], uri: "http://x"}}')
    text = "\n".join(err.value.errors)
    assert "engines.s.voice: unknown voice 'nobody'" in text
    assert "engines.s.command" in text and "engines.s.uri" in text


# ----------------------------------------------------------------------------- end to end
class ManagedDaemon(DaemonProc):
    """``DaemonProc`` plus one managed engine ``name`` (default: ``sambert`` running the worker with the
    stand-in model): ``engine`` gives its type, command and the rest of its keys."""

    def __init__(
        self,
        *args: Any,
        command: list[str],
        port: int,
        name: str = "sambert",
        engine: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.managed_name = name
        self.managed = {
            "type": "sambert",
            "uri": f"tcp://127.0.0.1:{port}",
            "command": command,
            "fallback": "zh",
            "restart_delay": 0.5,
            "restart_max_delay": 2.0,
            "stop_timeout": 5,
            **(engine or {}),
        }
        super().__init__(*args, **kwargs)

    def _write_config(self) -> None:
        super()._write_config()
        text = self.config_path.read_text(encoding="utf-8")
        line = "  zh: {type: embedded-zh}\n"
        assert line in text
        text = text.replace(line, line + f"  {self.managed_name}: {json.dumps(self.managed)}\n")
        self.config_path.write_text(text, encoding="utf-8")


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(p) for p in (task / "children").read_text().split()]
    return out


def status_engines(
    client: Any, daemon: DaemonProc, state: str, timeout: float = 60.0, name: str = "sambert"
) -> dict[str, Any]:
    status = client.collect(daemon.topic("status"))
    return status.wait_for(lambda m: m.json().get("engines", {}).get(name) == state, timeout).json()


def test_daemon_manages_the_worker(
    worker_py: str, tmp_path: Path, shared_broker: Broker, announcer_cache: Path
) -> None:  # noqa: F811
    port = h.free_port()
    command = worker_cmd(worker_py, tmp_path, port, SAMBERT_STANDIN_LOAD_SECONDS="4")
    d = ManagedDaemon(
        shared_broker,
        tmp_path / "daemon",
        announcer_cache,
        command=command,
        port=port,
        defaults={"targets": ["a"], "chime": False},
    )
    client = shared_broker.client()
    events = client.collect(d.topic("events"))
    d.start()
    try:
        # 1. while the worker loads, an announcement for sambert is spoken by zh, with the warning
        st = client.collect(d.topic("status")).wait_for(lambda m: "engines" in m.json(), 20).json()
        assert st["engines"]["sambert"] == "starting", st
        first = new_id("fb")
        client.publish_json(
            d.topic("say"),
            {
                "id": first,
                "text": "火警，请立即撤离。",
                "engine": "sambert",
                "emotion": "fearful",
                "priority": "emergency",
            },
        )
        started = events.wait_for(lambda m: m.json()["id"] == first and m.json()["state"] == "started", 30).json()
        assert started["engine"] == "zh" and started["fallback"] is True
        assert started["warnings"] == ["engine sambert is not ready; spoken by zh"]
        events.wait_for(lambda m: m.json()["id"] == first and m.json()["state"] == "finished", 30)
        assert d.wav("a", first).exists()

        # 2. ready: spoken by the worker (the stand-in's 200 Hz tone), no fallback fields
        status_engines(client, d, "ready")
        second = new_id("sb")
        client.publish_json(d.topic("say"), {"id": second, "text": "你好。", "engine": "sambert"})
        started = events.wait_for(lambda m: m.json()["id"] == second and m.json()["state"] == "started", 30).json()
        assert "fallback" not in started and "engine" not in started
        events.wait_for(lambda m: m.json()["id"] == second and m.json()["state"] == "finished", 30)
        import soundfile as sf

        samples, rate = sf.read(str(d.wav("a", second)), dtype="float32")
        assert h.dominant_hz(np.asarray(samples), rate) == pytest.approx(200, abs=10)

        # 3. kill -9 the worker: down, fallback meanwhile, restarted after the back-off, ready again
        assert d.proc is not None
        (worker_pid,) = [p for p in children(d.proc.pid)]
        os.kill(worker_pid, signal.SIGKILL)
        status_engines(client, d, "starting", 20)
        third = new_id("down")
        client.publish_json(d.topic("say"), {"id": third, "text": "三号门有人。", "engine": "sambert"})
        started = events.wait_for(lambda m: m.json()["id"] == third and m.json()["state"] == "started", 30).json()
        assert started["fallback"] is True and started["engine"] == "zh"
        status_engines(client, d, "ready")
        (new_pid,) = children(d.proc.pid)
        assert new_pid != worker_pid
        log = d.log()
        assert f"process {worker_pid} exited with code -9" in log and "restarting in 0.5 s" in log
    finally:
        code = d.stop()
    # 4. the daemon's shutdown stopped the worker
    assert code == 0, d.log_tail()
    assert wait_dead(new_pid), "the worker outlived the daemon"


def test_fallback_must_name_another_engine() -> None:
    from announcer.config import ConfigError

    for fallback in ("nope", "s"):
        with pytest.raises(ConfigError) as err:
            parse_config(f"engines: {{zh: {{type: embedded-zh}}, s: {{type: sambert, fallback: {fallback}}}}}")
        assert err.value.errors == [f"engines.s.fallback: {fallback!r} is not another engine (have: zh) (line 1)"]
