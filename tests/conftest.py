"""Shared fixtures. ``broker``: a real mosquitto per test; ``shared_broker``: one per session.

``closing(obj)`` closes what a test made (daemons, publishers, event logs) after it, pass or fail.
``broker_factory`` makes more (TLS listeners, a broker that starts late).
All yield ``tests.broker.Broker`` objects (``host``, ``port``, ``client()``, ``stop()``,
``start()``, ``restart()``, ``mqtt_config()``). A missing mosquitto binary fails the
test with a hint to run ``scripts/install-system-deps.sh``; it is never skipped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from alsa import alsa_devices  # noqa: E402,F401  (fixture)
from broker import INSTALL_HINT, Broker, find_mosquitto  # noqa: E402
from daemon_proc import NotifySocket, announcer_cache, client, events  # noqa: E402,F401  (fixtures)
from standins import harness  # noqa: E402


def _mosquitto() -> str:
    binary = find_mosquitto()
    if binary is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return binary


@pytest.fixture(scope="session")
def mosquitto_bin() -> str:
    """Path of the mosquitto binary; fails (never skips) when it is not installed."""
    return _mosquitto()


@pytest.fixture
def broker_factory(tmp_path: Path, mosquitto_bin: str) -> Iterator[Callable[..., Broker]]:
    """``broker_factory(start=True, **Broker kwargs)``: extra brokers (TLS, late start ...), closed after the test."""
    made: list[Broker] = []

    def make(start: bool = True, **kwargs: Any) -> Broker:
        b = Broker(tmp_path / f"mosquitto-{len(made) + 1}", mosquitto_bin, **kwargs)
        made.append(b)
        return b.start() if start else b

    yield make
    for b in reversed(made):
        b.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh broker for one test (free to stop/restart)."""
    b = Broker(tmp_path / "mosquitto", _mosquitto()).start()
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="session")
def shared_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One broker for the whole session: use unique client ids and topic prefixes; never stop it."""
    b = Broker(tmp_path_factory.mktemp("mosquitto-shared"), _mosquitto()).start()
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def sd_socket() -> Iterator[NotifySocket]:
    """A bound ``$NOTIFY_SOCKET`` (``daemon_proc.NotifySocket``) for a daemon, closed after the test."""
    s = NotifySocket()
    yield s
    s.close()


@pytest.fixture(scope="module")
def worker_py() -> str:
    """A Python 3.8-3.10 interpreter for the Sambert worker; skips the module's tests when there is none."""
    py = harness.worker_python()
    if py is None:
        pytest.skip("no Python 3.8-3.10 interpreter for the worker (set ANNOUNCER_TEST_WORKER_PYTHON)")
    return py


T = TypeVar("T")


@pytest.fixture
def closing() -> Iterator[Callable[[T], T]]:
    """``closing(obj)`` returns ``obj`` and closes it after the test, passed or failed (last first).

    For what a test makes itself: daemons (``close()`` stops one still running), publishers,
    event logs, FIFO speakers. Nothing is left running after a failed assertion.
    """
    made: list[Any] = []

    def add(obj: T) -> T:
        made.append(obj)
        return obj

    yield add
    for obj in reversed(made):
        try:
            obj.close()
        except Exception as exc:  # clean-up: report and go on with the rest
            print(f"clean-up of {obj!r} failed: {exc}")
