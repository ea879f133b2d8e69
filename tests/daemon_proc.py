"""The real daemon as a subprocess, for the end-to-end tests (``tests/test_daemon_*.py``,
the service tests: sd_notify, watchdog, reload, drain, security) and the benchmarks.

``DaemonProc`` writes a config (``file`` speakers ``a`` and ``b``, an ``mqtt`` speaker
``m``, the real ``embedded-zh`` engine) into a tmp dir, runs ``announcer run -c`` on it
with ``sys.executable -m announcer``, and waits for a *live* (non-retained)
``P/availability`` = ``online``, which the daemon publishes once its subscriptions are
confirmed. ``stop()`` sends SIGTERM, ``kill()`` SIGKILL, ``hup()`` SIGHUP. The daemon's
stderr (its log) goes to ``daemon.log`` in the work dir; ``log_tail()`` puts it into
assertion messages, ``wait_log()`` waits for a line of it.

Extras for the service tests: environment of its own (``env``: ``NOTIFY_SOCKET``,
``WATCHDOG_USEC``, ``ALSA_CONFIG_PATH``), extra speakers and config sections, mqtt
settings replaced, ``patch_config()`` (top-level sections replaced), ``rewrite()`` and a
``spawn()`` that does not wait for the broker.

``NotifySocket``: an AF_UNIX datagram socket bound by the test (abstract name, so no
path-length limit), the ``$NOTIFY_SOCKET`` a daemon sends ``READY=1``, ``STATUS=...``,
``WATCHDOG=1`` ... to, as systemd would receive them.

``EventLog`` is a subscriber with a *persistent* session (clean start off, session
expiry 10 min): while the broker restarts, what the daemon publishes is queued for it,
so a test can count every event, or see the daemon's live ``online`` after a broker
restart (a plain client that resubscribes late only gets the retained copy). Redeliveries (same
bytes, e.g. a PUBACK lost in the restart) are dropped, so a duplicate in the log is a duplicate the daemon sent.

The clause cache is passed in (one per test session: re-rendering costs time and most
tests do not measure synthesis); texts that must really be synthesized come from
``unique_text``, whose numbers make every clause new.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from broker import Broker, Collected, Received, TestClient
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

ROOT = Path(__file__).resolve().parent.parent
SPEAKERS = ("a", "b", "m")


def yaml_str(value: object) -> str:
    return json.dumps(str(value))  # a JSON string is a valid YAML scalar


def unique_text(units: int, rng: random.Random | None = None) -> str:
    """``units`` sentences of two clauses each, with fresh numbers: never in the clause cache.

    One unit is about 4.5 s of audio and 0.1-0.2 s of synthesis on a laptop core.
    """
    r = rng or random.Random()
    return "".join(f"第{r.randint(100, 999)}次测试广播，请{r.randint(10, 99)}号房间注意。" for _ in range(units))


def new_id(tag: str = "t") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}"


class DaemonError(AssertionError):
    pass


class DaemonProc:
    """``announcer run`` in a subprocess against ``broker``; see the module doc."""

    def __init__(
        self,
        broker: Broker,
        workdir: Path,
        cache_dir: Path,
        *,
        prefix: str | None = None,
        client_id: str | None = None,
        limits: dict[str, Any] | None = None,
        defaults: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        speakers: dict[str, str] | None = None,
        mqtt: dict[str, Any] | None = None,
        sections: str = "",
        log_level: str = "INFO",
        python: str | None = None,
    ) -> None:
        self.broker = broker
        self.python = python or sys.executable  # another environment's (the installed wheel's, tests/test_wheel.py)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cache_dir = Path(cache_dir)
        self.prefix = prefix or f"ann-{uuid.uuid4().hex[:6]}"
        self.client_id = client_id or f"announcer-{uuid.uuid4().hex[:8]}"
        self.limits = {"max_text_chars": 400, "max_payload_bytes": 4096, "per_minute": 1000, **(limits or {})}
        self.defaults = {"targets": ["a"], "chime": True, **(defaults or {})}
        self.env = dict(env or {})  # on top of os.environ
        self.extra_speakers = dict(speakers or {})  # name -> YAML flow mapping
        self.mqtt_overrides = dict(mqtt or {})  # key -> YAML scalar/flow text (host, port replace the broker's)
        self.sections = sections  # extra top-level YAML
        self.log_level = log_level
        self.wav_dirs = {"a": self.workdir / "wav-a", "b": self.workdir / "wav-b"}
        self.audio_topic = f"{self.prefix}/audio/m"
        self.spool_path = self.workdir / "spool.sqlite3"
        self.config_path = self.workdir / "announcer.yaml"
        self.log_path = self.workdir / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.spawned = 0.0  # time.monotonic() just before the last spawn
        self._write_config()

    # ---- config ----------------------------------------------------------------------
    def _write_config(self) -> None:
        b = self.broker
        mqtt_settings: dict[str, Any] = {
            "host": b.host,
            "port": b.port,
            "topic_prefix": self.prefix,
            "client_id": self.client_id,
            "keepalive": 10,
            "reconnect_min_delay": 0.1,
            "reconnect_max_delay": 1.0,
            **self.mqtt_overrides,
        }
        mqtt_lines = "".join(f"  {k}: {v}\n" for k, v in mqtt_settings.items())
        speakers = "".join(f"  {name}: {spec}\n" for name, spec in self.extra_speakers.items())
        limits = ", ".join(f"{k}: {v}" for k, v in self.limits.items())
        defaults = ", ".join(f"{k}: {json.dumps(v)}" for k, v in self.defaults.items())
        self.config_path.write_text(
            f"""# generated by tests/daemon_proc.py
mqtt:
{mqtt_lines}engines:
  zh: {{type: embedded-zh}}
speakers:
  a: {{type: file, directory: {yaml_str(self.wav_dirs["a"])}}}
  b: {{type: file, directory: {yaml_str(self.wav_dirs["b"])}}}
  m: {{type: mqtt, topic: {self.audio_topic}}}
{speakers}zones:
  files: [a, b]
  all: [a, b, m]
defaults: {{{defaults}}}
limits: {{{limits}}}
spool: {{path: {yaml_str(self.spool_path)}}}
cache: {{directory: {yaml_str(self.cache_dir)}}}
homeassistant: {{enabled: false}}
logging: {{level: {self.log_level}}}
"""
            + self.sections,
            encoding="utf-8",
        )

    def rewrite(self) -> None:
        """Write the config again from the (changed) attributes."""
        self._write_config()

    def patch_config(self, changes: dict[str, Any]) -> None:
        """Rewrite the written config with ``changes`` (top-level sections replaced)."""
        data = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        data.update(changes)
        self.config_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    def topic(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts))

    @property
    def availability_topic(self) -> str:
        """Where the daemon says ``online`` (a pair member: ``P/pair/<client_id>/availability``)."""
        return self.topic("availability")

    # ---- lifecycle -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def spawn(self) -> DaemonProc:
        """Start ``announcer run`` without waiting for anything."""
        if self.running:
            raise DaemonError("daemon already running")
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== start {self.starts} ====\n".encode())
            log.flush()
            env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
            self.spawned = time.monotonic()
            self.proc = subprocess.Popen(
                [self.python, "-m", "announcer", "run", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=self.workdir,
                env=env,
            )
        return self

    def start(self, timeout: float = 60.0) -> DaemonProc:
        """Spawn and wait for a live ``online`` on ``P/availability`` (seen through the broker's plain listener)."""
        if self.running:
            raise DaemonError("daemon already running")
        avail = self.broker.client().collect(self.availability_topic)
        self.spawn()
        deadline = time.monotonic() + timeout
        while True:
            try:
                avail.wait_for(lambda m: m.payload == b"online" and not m.retain, timeout=0.5)
                return self
            except AssertionError:
                pass
            if self.proc is not None and self.proc.poll() is not None:
                raise DaemonError(f"daemon exited with {self.proc.returncode} before coming online\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise DaemonError(f"daemon not online within {timeout}s\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code (DaemonError if it does not exit)."""
        return self._signal(signal.SIGTERM, timeout)

    def kill(self) -> int:
        """SIGKILL (no clean-up at all: the broker sends the last will)."""
        return self._signal(signal.SIGKILL, 10.0)

    def hup(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def _signal(self, sig: int, timeout: float) -> int:
        proc = self.proc
        if proc is None:
            raise DaemonError("daemon not started")
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise DaemonError(
                    f"daemon did not exit within {timeout}s of {signal.Signals(sig).name}\n{self.log_tail()}"
                ) from None
        self.proc = None
        return int(proc.returncode)

    def close(self, timeout: float = 15.0) -> None:
        """For fixtures: make sure nothing is left running."""
        if self.running:
            try:
                self.stop(timeout)
            except DaemonError:
                pass

    # ---- what it left behind ---------------------------------------------------------
    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "daemon log (tail):\n" + "\n".join(self.log().splitlines()[-lines:])

    def this_run_log(self) -> str:
        """The log of the current (last) start only."""
        text = self.log()
        return text[text.rfind(f"==== start {self.starts} ====") :]

    def wait_log(self, needle: str | re.Pattern[str], timeout: float = 20.0, after: int = 0) -> str:
        """The first log line (of this start, after ``after`` characters of it) containing ``needle``."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.this_run_log()[after:].splitlines():
                if needle.search(line) if isinstance(needle, re.Pattern) else needle in line:
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line with {needle!r} within {timeout}s\n{self.log_tail(60)}")
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"daemon exited ({self.proc.returncode}) while waiting for {needle!r}\n{self.log_tail(60)}"
                )
            time.sleep(0.05)

    def wav(self, speaker: str, ann_id: str) -> Path:
        return self.wav_dirs[speaker] / f"{ann_id}.wav"

    def wav_files(self, speaker: str) -> dict[str, Path]:
        d = self.wav_dirs[speaker]
        return {p.stem: p for p in d.glob("*.wav")} if d.is_dir() else {}

    def all_wavs(self) -> set[Path]:
        return {p for s in self.wav_dirs for p in self.wav_files(s).values()}


class NotifySocket:
    """Receives sd_notify datagrams; ``env`` is what to give the daemon."""

    def __init__(self) -> None:
        self.name = f"announcer-test-{uuid.uuid4().hex[:12]}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name)
        self.sock.settimeout(0.2)
        self._items: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._recv, daemon=True)
        self._thread.start()

    @property
    def env(self) -> dict[str, str]:
        return {"NOTIFY_SOCKET": "@" + self.name}

    def _recv(self) -> None:
        while not self._closed:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._cond:
                self._items.append((time.monotonic(), data.decode("utf-8", "replace")))
                self._cond.notify_all()

    def messages(self, since: float = 0.0) -> list[str]:
        with self._cond:
            return [m for t, m in self._items if t >= since]

    def times(self, message: str, since: float = 0.0) -> list[float]:
        """When each datagram containing the line ``message`` arrived."""
        with self._cond:
            return [t for t, m in self._items if t >= since and message in m.splitlines()]

    def wait_for(self, pred: Callable[[str], bool], timeout: float, since: float = 0.0) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for t, m in self._items:
                    if t >= since and pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no matching sd_notify message within {timeout}s; got {[m for _t, m in self._items][-30:]}"
                    )
                self._cond.wait(left)

    def close(self) -> None:
        self._closed = True
        self.sock.close()


class EventLog:
    """A persistent-session subscriber to ``topic_filter`` (QoS 1), deduplicating redeliveries."""

    def __init__(
        self, broker: Broker, topic_filter: str, session_expiry: int = 600, timeout: float = 10.0, dedupe: bool = True
    ) -> None:
        self.messages = Collected(topic_filter)
        self.dedupe = dedupe
        self.topic_filter = topic_filter
        self._seen: set[bytes] = set()
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client_id = f"eventlog-{uuid.uuid4().hex[:8]}"
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        c.on_connect = self._on_connect
        c.on_subscribe = lambda *_a: self._subscribed.set()
        c.on_message = self._on_message
        c.reconnect_delay_set(0.1, 1.0)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = session_expiry
        c.connect(broker.host, broker.port, keepalive=30, clean_start=False, properties=props)
        c.loop_start()
        self._c = c
        if not self._subscribed.wait(timeout):
            self.close()
            raise DaemonError(f"event log could not subscribe to {topic_filter}")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if not rc.is_failure:
            client.subscribe(self.topic_filter, qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        payload = bytes(msg.payload)
        with self._lock:
            if not self.dedupe:
                pass
            elif payload in self._seen:
                return
            self._seen.add(payload)
        self.messages._append(Received(msg.topic, payload, getattr(msg, "properties", None), msg.qos, bool(msg.retain)))

    def wait_live(self, payload: bytes, after: int, timeout: float = 20.0) -> Received:
        """The first non-retained ``payload`` among the messages received after the first ``after``."""
        deadline = time.monotonic() + timeout
        while True:
            for m in self.messages.snapshot()[after:]:
                if m.payload == payload and not m.retain:
                    return m
            if time.monotonic() > deadline:
                got = [(m.payload, m.retain) for m in self.messages.snapshot()]
                raise AssertionError(
                    f"no live {payload!r} on {self.topic_filter} after message {after} within {timeout}s; got {got}"
                )
            time.sleep(0.02)

    def events(self, pred: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        out = [m.json() for m in self.messages]
        return [e for e in out if pred is None or pred(e)]

    def close(self) -> None:
        self._c.disconnect()
        self._c.loop_stop()


SPEAKER_TERMINAL = ("finished", "failed", "cancelled", "expired")


class Events:
    """The JSON events of a ``Collected`` (``P/events``), with waits by id, state and speaker."""

    def __init__(self, messages: Collected) -> None:
        self.messages = messages

    def all(
        self, ann_id: str | None = None, state: str | None = None, speaker: str | None = None
    ) -> list[dict[str, Any]]:
        out = []
        for m in self.messages:
            e = m.json()
            if (
                (ann_id is None or e.get("id") == ann_id)
                and (state is None or e.get("state") == state)
                and (speaker is None or e.get("speaker") == speaker)
            ):
                out.append(e)
        return out

    def wait(self, ann_id: str | None, state: str, speaker: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
        def match(m: Received) -> bool:
            e = m.json()
            return (
                (ann_id is None or e.get("id") == ann_id)
                and e.get("state") == state
                and (speaker is None or e.get("speaker") == speaker)
            )

        return self.messages.wait_for(match, timeout).json()

    def wait_done(
        self, ids: list[str], speakers: tuple[str, ...] | list[str], timeout: float = 60.0
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Wait until every (id, speaker) has a terminal event (or the id was rejected); returns the first of each."""
        deadline = time.monotonic() + timeout
        while True:
            done: dict[tuple[str, str], dict[str, Any]] = {}
            rejected = set()
            for e in self.all():
                if e.get("state") == "rejected":
                    rejected.add(e.get("id"))
                elif e.get("state") in SPEAKER_TERMINAL and e.get("speaker"):
                    done.setdefault((e["id"], e["speaker"]), e)
            missing = [(i, s) for i in ids for s in speakers if (i, s) not in done and i not in rejected]
            if not missing:
                return done
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no terminal event within {timeout}s for {missing}; events:\n  "
                    + "\n  ".join(json.dumps(e, ensure_ascii=False) for e in self.all())
                )
            time.sleep(0.05)

    def order(self, state: str, speaker: str, ids: list[str] | None = None) -> list[str]:
        """Ids in the order their ``state`` event came on ``speaker`` (limited to ``ids``)."""
        return [e["id"] for e in self.all(state=state, speaker=speaker) if ids is None or e["id"] in ids]

    def dump(self) -> str:
        return "\n  ".join(json.dumps(e, ensure_ascii=False) for e in self.all())


# ---------------------------------------------------------------------------- shared fixtures
# Imported by name into the test modules (``from daemon_proc import client, events, ...``).
# ``_idle_between_tests`` is autouse: import it only where a module-scoped ``daemon`` exists.


@pytest.fixture(scope="session")
def announcer_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One clause cache per test session (the same directory for every daemon test module)."""
    d = tmp_path_factory.getbasetemp() / "announcer-cache"
    d.mkdir(exist_ok=True)
    return d


def module_daemon(
    broker: Broker, workdir: Path, cache: Path, config: dict[str, Any] | None = None, **kwargs: Any
) -> Iterator[DaemonProc]:
    """Body of a module-scoped ``daemon`` fixture: started, and stopped cleanly (exit 0) at the end.

    ``config``: top-level sections that replace the generated ones (``DaemonProc.patch_config``).
    """
    d = DaemonProc(broker, workdir, cache, **kwargs)
    if config:
        d.patch_config(config)
    d.start()
    try:
        yield d
    finally:
        if d.running:
            code = d.stop()
            assert code == 0, f"exit code {code}\n{d.log_tail()}"


@pytest.fixture
def client(shared_broker: Broker) -> TestClient:
    return shared_broker.client()


@pytest.fixture
def events(client: TestClient, daemon: DaemonProc) -> Events:
    return Events(client.collect(daemon.topic("events")))


def wait_idle(client: TestClient, daemon: DaemonProc, timeout: float = 30.0) -> dict[str, Any]:
    """The first (retained or live) ``P/status`` saying idle."""
    status = client.collect(daemon.topic("status"))
    m = status.wait_for(lambda m: m.json().get("queue") == 0 and m.json().get("speaking") == [], timeout)
    return m.json()


@pytest.fixture(autouse=True)
def _idle_between_tests(daemon: DaemonProc, shared_broker: Broker) -> Iterator[None]:
    assert daemon.running, daemon.log_tail()
    wait_idle(shared_broker.client(), daemon)
    yield
    assert daemon.running, f"the daemon died during the test\n{daemon.log_tail()}"
