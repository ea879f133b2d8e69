"""Shared fixtures. ``broker``: a real mosquitto per test; ``shared_broker``: one per session.

Both yield a ``tests.broker.Broker`` (``host``, ``port``, ``client()``, ``stop()``,
``start()``, ``restart()``, ``mqtt_config()``). A missing mosquitto binary fails the
test with a hint to run ``scripts/install-system-deps.sh``; it is never skipped.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from broker import INSTALL_HINT, Broker, find_mosquitto  # noqa: E402


def _mosquitto() -> str:
    binary = find_mosquitto()
    if binary is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return binary


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
