"""Managed engine processes, and the engines that use one: ``sambert`` and ``wyoming`` with a ``command``.

An engine served by a Wyoming server may name a ``command`` that runs that server (for
Sambert: ``announcer/workers/sambert.py`` in its own Python 3.10 virtualenv; for
``type: wyoming``: any server, e.g. Piper or another announcer in its own virtualenv).
Then ``ManagedProcess`` owns the child:

* start it, and call it ``ready`` once it answers ``describe`` at the engine's uri
  (a managed ``wyoming`` engine: and once its voices, languages, emotions and rate are
  learnt from ``describe`` and a probe synthesis, as ``WyomingEngine`` does at load)
  (``starting`` until then, ``down`` if it exits or is not ready within ``start_timeout``);
* when it dies, start it again after a back-off (``restart_delay``, doubled per failed
  start up to ``restart_max_delay``; reset once it has been ready for a minute);
* stop it on shutdown: SIGTERM, then SIGKILL after ``stop_timeout`` seconds;
* give it a clean environment: only ``CHILD_ENV_NAMES`` / ``CHILD_ENV_PREFIXES`` of the
  daemon's (the locale, ``PATH``, ``HOME``, Python's own settings) plus what the engine's
  ``env`` names; never the MQTT password or HTTP tokens a config passes as ``${VAR}``, nor
  ``NOTIFY_SOCKET``;
* its output is logged line by line under ``announcer.engines.supervised``; the last line
  (the worker prints its start-up error as one line, exit code 2) goes into the log
  line that reports the exit.

States go to ``on_change`` (the daemon republishes ``P/status`` with
``"engines": {name: "starting" | "ready" | "down"}``). While an engine is not ready the
``Synthesizer`` speaks its announcements with the engine's ``fallback`` (see
``announcer.playback.synthesizer``), so a fire alarm is never silent because a worker is down.

The engine side (config keys ``ManagedKeys``: ``command``, ``fallback`` and the timings)
is ``ManagedEngine``, shared by ``SambertEngine`` and ``ManagedWyomingEngine``.
In the daemon the process is started by ``start`` (never blocking start-up);
in one-shot commands (``announcer say``, ``announcer engines``) ``load`` starts it,
waits until it is ready and stops it when the program exits.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..core.errors import EngineUnavailable
from .base import Engine, StateCallback
from .wyoming_protocol import fetch_info

_LOGGER = logging.getLogger(__name__)

STATES = ("stopped", "starting", "ready", "down")
PROBE_TIMEOUT = 2.0
POLL_SECONDS = 0.2
STABLE_SECONDS = 60.0  # ready this long: the next crash restarts after restart_delay again
# what a managed child inherits from the daemon's environment (plus the engine's ``env``)
CHILD_ENV_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "VIRTUAL_ENV",
        "XDG_RUNTIME_DIR",
        "XDG_CACHE_HOME",
        "XDG_DATA_HOME",
        "XDG_CONFIG_HOME",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONUNBUFFERED",
        "PYTHONIOENCODING",
        "PYTHONUTF8",
        "PYTHONDONTWRITEBYTECODE",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
    }
)
CHILD_ENV_PREFIXES = ("LC_",)


def child_environment(extra: dict[str, str] | None = None, parent: dict[str, str] | None = None) -> dict[str, str]:
    """The allow-listed part of ``parent`` (default: the daemon's environment) plus ``extra``."""
    parent = dict(os.environ) if parent is None else parent
    env = {k: v for k, v in parent.items() if k in CHILD_ENV_NAMES or k.startswith(CHILD_ENV_PREFIXES)}
    env.update(extra or {})
    return env


class ManagedKeys(BaseModel):
    """Keys of an engine whose Wyoming server the daemon may run itself (``announcer.engines.supervised``).

    Shared by ``type: sambert`` and ``type: wyoming``. Left out of ``repr`` (and so of the
    cache fingerprint, which a managed engine extends with its ``command`` itself): a plain
    engine's fingerprint stays as it was, and supervision settings do not change the audio.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    command: tuple[str, ...] | None = Field(None, repr=False)  # runs the server; None: started some other way
    fallback: str | None = Field(None, repr=False)  # speaks while this one is not ready; None: the embedded voice
    start_timeout: float = Field(300.0, gt=0, repr=False)  # seconds until it answers describe
    restart_delay: float = Field(1.0, gt=0, repr=False)  # doubled per failed start ...
    restart_max_delay: float = Field(60.0, gt=0, repr=False)  # ... up to this
    stop_timeout: float = Field(10.0, gt=0, repr=False)  # SIGTERM, then SIGKILL after this
    # the child's environment beyond the allow-list (CHILD_ENV_NAMES): {NAME: value}, e.g. {HF_HOME: ${HF_HOME}}
    env: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = Field(default_factory=dict, repr=False)

    @field_validator("command")
    @classmethod
    def _command(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None and not v:
            raise ValueError("an empty command: give the program and its arguments, or leave command out")
        return v


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM if the daemon dies without stopping it (SIGKILL, crash)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class ManagedProcess:
    """One child process serving an engine; see the module docstring for the rules."""

    def __init__(
        self,
        name: str,
        command: list[str] | tuple[str, ...],
        probe: Callable[[], bool],
        start_timeout: float = 300.0,
        restart_delay: float = 1.0,
        restart_max_delay: float = 60.0,
        stop_timeout: float = 10.0,
        on_change: StateCallback | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.probe = probe
        self.start_timeout = start_timeout
        self.restart_delay = restart_delay
        self.restart_max_delay = restart_max_delay
        self.stop_timeout = stop_timeout
        self.on_change = on_change
        self.env = env
        self.state = "stopped"
        self.restarts = 0  # children started after the first
        self.last_line = ""  # the child's last line of output
        self.probe_error = ""  # why the last probe failed
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    # ---- public -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """The supervisor runs (started and not stopped), whatever the child's state."""
        return self._thread is not None and not self._stop.is_set()

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._supervise, name=f"engine-{self.name}", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.state != "ready":
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    return False
                self._changed.wait(min(remaining, 1.0))
        return True

    def stop(self) -> None:
        """Stop supervising and end the child: SIGTERM, then SIGKILL after ``stop_timeout``."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        self._terminate()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.stop_timeout + 5.0)
        self._thread = None
        self._set_state("stopped")

    # ---- the supervisor thread ---------------------------------------------------------
    def _set_state(self, state: str) -> None:
        with self._changed:
            if state == self.state:
                return
            self.state = state
            self._changed.notify_all()
        log = _LOGGER.warning if state == "down" else _LOGGER.info
        log("engine %s: %s", self.name, state)
        if self.on_change is not None:
            try:
                self.on_change(self.name, state)
            except Exception:
                _LOGGER.exception("engine %s: state listener failed", self.name)

    def _supervise(self) -> None:
        delay = self.restart_delay
        first = True
        while not self._stop.is_set():
            if not first:
                self.restarts += 1
            first = False
            ready_since = self._run_once()
            if self._stop.is_set():
                break
            if ready_since is not None and time.monotonic() - ready_since >= STABLE_SECONDS:
                delay = self.restart_delay
            self._set_state("down")
            _LOGGER.warning("engine %s: restarting in %.1f s", self.name, delay)
            if self._stop.wait(delay):
                break
            delay = min(self.restart_max_delay, delay * 2)

    def _run_once(self) -> float | None:
        """Start the child and watch it until it exits; returns when it became ready (monotonic) or None."""
        self._set_state("starting")
        try:
            proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=child_environment(self.env),
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        except OSError as exc:
            self.last_line = f"cannot run {self.command[0]}: {exc.strerror or exc}"
            _LOGGER.error("engine %s: %s", self.name, self.last_line)
            return None
        self._proc = proc
        self.pid = proc.pid
        _LOGGER.info("engine %s: started %s (pid %d)", self.name, " ".join(self.command), proc.pid)
        reader = threading.Thread(target=self._pump, args=(proc,), name=f"engine-{self.name}-log", daemon=True)
        reader.start()
        started = time.monotonic()
        ready_since: float | None = None
        while proc.poll() is None and not self._stop.is_set():
            if ready_since is None:
                if self._probe():
                    ready_since = time.monotonic()
                    self._set_state("ready")
                    continue
                if time.monotonic() - started > self.start_timeout:
                    _LOGGER.error(
                        "engine %s: not ready within %.0f s%s; stopping it",
                        self.name,
                        self.start_timeout,
                        f" ({self.probe_error})" if self.probe_error else "",
                    )
                    self._terminate()
                    break
            self._stop.wait(POLL_SECONDS)
        if self._stop.is_set():  # stop() may have come before this child existed: end it here too
            self._terminate()
            return ready_since
        code = proc.wait()
        reader.join(2.0)
        _LOGGER.warning(
            "engine %s: process %d exited with code %s%s",
            self.name,
            proc.pid,
            code,
            f": {self.last_line}" if self.last_line else "",
        )
        self._proc = None
        return ready_since

    def _probe(self) -> bool:
        try:
            return bool(self.probe())
        except Exception as exc:  # noqa: BLE001 - not ready (yet); said when start_timeout runs out
            self.probe_error = str(exc)
            return False

    def _pump(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self.last_line = line
                _LOGGER.info("engine %s: %s", self.name, line)

    def _terminate(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            _LOGGER.warning(
                "engine %s: pid %d ignored SIGTERM for %.0f s; killing it", self.name, proc.pid, self.stop_timeout
            )
            proc.kill()
            proc.wait(5.0)
        except OSError:
            pass


# ------------------------------------------------------------------- engines with a supervisor
class SupervisedEngine(Engine):
    """An engine served by a Wyoming server at ``config.uri`` that a ``ManagedProcess`` runs when
    ``config.command`` is given (config keys: ``ManagedKeys``): the lifecycle shared by the
    ``sambert`` type and ``type: wyoming`` with a ``command``. Its ``state`` is the process's
    (``starting``, ``ready``, ``down``, ``stopped``); while it is not ``ready`` the synthesizer
    lets its ``fallback`` speak (``may_fall_back``).

    ``_answers`` is the readiness probe (by default: the server answers ``describe``).
    """

    supervised = True

    def __init__(self, name: str, config: Any, cache_dir: Any = None) -> None:
        super().__init__(name, config, cache_dir)
        self.supervisor: ManagedProcess | None = None
        if config.command:
            self.supervisor = ManagedProcess(
                name,
                config.command,
                self._answers,
                config.start_timeout,
                config.restart_delay,
                config.restart_max_delay,
                config.stop_timeout,
                env=dict(config.env),
            )

    @property
    def fallback(self) -> str | None:
        return self.config.fallback  # type: ignore[no-any-return]

    @property
    def may_fall_back(self) -> bool:
        return True

    @property
    def state(self) -> str:
        """``ready`` / ``starting`` / ``down`` of the managed process (``ready`` when unmanaged)."""
        if self.supervisor is None or not self.supervisor.running:
            return "ready" if self.supervisor is None else "down"
        return self.supervisor.state

    @property
    def ready(self) -> bool:
        """False while a supervised server is not serving: the Synthesizer uses the fallback then.

        An unmanaged engine, or a managed one not started yet (one-shot commands: ``load``
        starts it), counts as ready; a failure there still falls back, per request.
        """
        return self.supervisor is None or not self.supervisor.running or self.supervisor.ready

    @property
    def supervising(self) -> bool:
        """The daemon runs the process (``start``): readiness is the supervisor's."""
        return self.supervisor is not None and self.supervisor.running

    @property
    def fingerprint(self) -> str:
        command = self.config.command
        return super().fingerprint + (f":{list(command)!r}" if command else "")  # the command picks the model

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "uri": self.config.uri, "managed": self.supervisor is not None}

    # --- lifecycle ----------------------------------------------------------------
    def _answers(self) -> bool:
        fetch_info(self.config.uri, PROBE_TIMEOUT)
        return True

    def start(self, on_change: StateCallback | None = None) -> None:
        """Daemon: start (and supervise) the process in the background; never blocks or raises.
        Without a ``command`` nothing happens here: the server is reached at each request."""
        if self.supervisor is not None:
            self.supervisor.on_change = on_change
            self.supervisor.start()

    def load(self) -> None:
        """Supervised (daemon): nothing to do, readiness is the supervisor's. Else see ``_load``."""
        if self.supervising:
            return
        super().load()

    def _start_and_wait(self, what: str, see: str = "") -> None:
        """One-shot use (``announcer say``): start the process, wait until it answers, stop it at exit."""
        assert self.supervisor is not None
        self.supervisor.start()
        atexit.register(self.close)
        if not self.supervisor.wait_ready(self.config.start_timeout):
            last = self.supervisor.last_line
            self.supervisor.stop()
            raise EngineUnavailable(
                f"{self.type_name}: engine {self.name}: the {what} did not become ready at "
                f"{self.config.uri}" + (f": {last}" if last else "") + see
            )

    def close(self) -> None:
        if self.supervisor is not None and self.supervisor.state != "stopped":
            self.supervisor.stop()
