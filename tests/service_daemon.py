"""Helpers for the service tests (sd_notify, watchdog, reload, drain, security).

``NotifySocket``: an AF_UNIX datagram socket bound by the test (abstract name, so no
path-length limit), the ``$NOTIFY_SOCKET`` a daemon sends ``READY=1``, ``STATUS=...``,
``WATCHDOG=1`` ... to, as systemd would receive them.

``FifoSpeakers``: real PortAudio devices that play in real time, or hang, on demand.
Each is an ALSA ``file`` PCM on a ``null`` slave writing raw S16_LE mono 16 kHz into a
FIFO (``plug`` converts whatever the stream was opened with). The writer blocks for
real once the pipe (64 KiB, about 2 s of audio) is full, inside PortAudio's write,
exactly like a sound card that stopped taking samples. ``FifoReader`` holds the read
end open (so the writer's open never blocks) and drains it at a chosen pace:
``pace(None)`` as fast as it comes, ``pace(1.0)`` real time (32000 bytes/s), ``pause()``
not at all (the speaker hangs).

``ServiceDaemon``: ``DaemonProc`` with extra environment (``NOTIFY_SOCKET``,
``WATCHDOG_USEC``, ``ALSA_CONFIG_PATH``), extra speakers and config sections, a ``spawn()``
that does not wait for the broker, ``hup()`` and ``wait_log()``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemon_proc import DaemonError, DaemonProc

SYSTEM_ALSA_CONF = "/usr/share/alsa/alsa.conf"
FIFO_RATE = 16000
FIFO_BYTES_PER_SECOND = FIFO_RATE * 2  # S16_LE mono


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
                    raise AssertionError(f"no matching sd_notify message within {timeout}s; got "
                                         f"{[m for _t, m in self._items][-30:]}")
                self._cond.wait(left)

    def close(self) -> None:
        self._closed = True
        self.sock.close()


class FifoReader:
    """Holds a FIFO's read end and drains it at a pace (see the module doc)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.bytes = 0
        self._speed: float | None = 0.0  # 0: paused; None: as fast as possible; x: x times real time
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def pace(self, speed: float | None) -> None:
        self._speed = speed

    def pause(self) -> None:
        self._speed = 0.0

    def _run(self) -> None:
        tick = 0.05
        while not self._stop:
            speed = self._speed
            want = 1 << 20 if speed is None else int(FIFO_BYTES_PER_SECOND * speed * tick) & ~1
            while want > 0:
                try:
                    got = os.read(self.fd, min(want, 65536))
                except BlockingIOError:
                    break
                except OSError:
                    return
                if not got:
                    break
                self.bytes += len(got)
                want -= len(got)
            time.sleep(tick)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        os.close(self.fd)


class FifoSpeakers:
    """``count`` FIFO-backed ALSA speakers ``annfifo1`` .. ``annfifoN`` (see the module doc)."""

    def __init__(self, directory: Path, count: int = 1) -> None:
        if not Path(SYSTEM_ALSA_CONF).is_file():
            raise AssertionError(f"{SYSTEM_ALSA_CONF} is missing: install ALSA (scripts/install-system-deps.sh)")
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_file = self.dir / "asoundrc"
        lines = []
        self.readers: dict[int, FifoReader] = {}
        for i in range(1, count + 1):
            fifo = self.dir / f"speaker{i}.fifo"
            os.mkfifo(fifo)
            lines.append(f'pcm.annfiforaw{i} {{ type file slave.pcm "null" file "{fifo}" format "raw" }}')
            lines.append(f'pcm.annfifo{i} {{ type plug slave {{ pcm "annfiforaw{i}" format S16_LE rate {FIFO_RATE} '
                         f'channels 1 }} hint {{ show on description "announcer FIFO speaker {i}" }} }}')
            self.readers[i] = FifoReader(fifo)
        self.config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @staticmethod
    def device(i: int) -> str:
        return f"annfifo{i}"

    def speaker_yaml(self, i: int) -> str:
        return f"{{type: sounddevice, device: {self.device(i)}, latency: low, lead_in_ms: 0}}"

    @property
    def env(self) -> dict[str, str]:
        return {"ALSA_CONFIG_PATH": f"{SYSTEM_ALSA_CONF}:{self.config_file}"}

    def close(self) -> None:
        for r in self.readers.values():
            r.pace(None)
        time.sleep(0.2)
        for r in self.readers.values():
            r.close()


class ServiceDaemon(DaemonProc):
    """``DaemonProc`` with environment, speakers and sections of its own (see the module doc)."""

    def __init__(self, *args: Any, env: dict[str, str] | None = None, speakers: dict[str, str] | None = None,
                 mqtt: dict[str, Any] | None = None, sections: str = "", log_level: str = "INFO",
                 **kwargs: Any) -> None:
        self.env = dict(env or {})
        self.extra_speakers = dict(speakers or {})  # name -> YAML flow mapping
        self.mqtt_overrides = dict(mqtt or {})  # key -> YAML scalar/flow text (host, port replace the broker's)
        self.sections = sections  # extra top-level YAML
        self.log_level = log_level
        super().__init__(*args, **kwargs)

    def _write_config(self) -> None:
        super()._write_config()
        text = self.config_path.read_text(encoding="utf-8")
        speakers_end = f"  m: {{type: mqtt, topic: {self.audio_topic}}}\n"
        assert speakers_end in text
        text = text.replace(speakers_end, speakers_end + "".join(
            f"  {name}: {spec}\n" for name, spec in self.extra_speakers.items()))
        for key, value in self.mqtt_overrides.items():
            line = re.compile(rf"^  {key}: .*$", re.M)
            if line.search(text):
                text = line.sub(f"  {key}: {value}", text, count=1)
            else:
                text = text.replace("mqtt:\n", f"mqtt:\n  {key}: {value}\n", 1)
        text = text.replace("logging: {level: INFO}", f"logging: {{level: {self.log_level}}}")
        self.config_path.write_text(text + self.sections, encoding="utf-8")

    def rewrite(self) -> None:
        """Write the config again from the (changed) attributes."""
        self._write_config()

    def spawn(self) -> ServiceDaemon:
        """Start ``announcer run`` without waiting for anything."""
        if self.running:
            raise DaemonError("daemon already running")
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== start {self.starts} ====\n".encode())
            log.flush()
            env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
            self.proc = subprocess.Popen([sys.executable, "-m", "announcer.cli", "run", "-c", str(self.config_path)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                         cwd=self.workdir, env=env)
        return self

    def start(self, timeout: float = 60.0) -> ServiceDaemon:
        """Spawn and wait for a live ``online`` on ``P/availability`` (seen through the broker's plain listener)."""
        avail = self.broker.client().collect(self.topic("availability"))
        self.spawn()
        deadline = time.monotonic() + timeout
        while True:
            try:
                avail.wait_for(lambda m: m.payload == b"online" and not m.retain, timeout=0.5)
                return self
            except AssertionError:
                pass
            if self.proc is not None and self.proc.poll() is not None:
                raise DaemonError(f"daemon exited with {self.proc.returncode} before coming online\n"
                                  f"{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise DaemonError(f"daemon not online within {timeout}s\n{self.log_tail()}")

    def hup(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def this_run_log(self) -> str:
        """The log of the current (last) start only."""
        text = self.log()
        return text[text.rfind(f"==== start {self.starts} ===="):]

    def wait_log(self, needle: str | re.Pattern[str], timeout: float = 20.0, after: int = 0) -> str:
        """The first log line (of this start, after ``after`` characters of it) containing ``needle``."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.this_run_log()[after:].splitlines():
                if (needle.search(line) if isinstance(needle, re.Pattern) else needle in line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line with {needle!r} within {timeout}s\n{self.log_tail(60)}")
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode}) while waiting for {needle!r}\n"
                                     f"{self.log_tail(60)}")
            time.sleep(0.05)
