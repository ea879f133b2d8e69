"""Fixtures of the reliability suite (``tests/reliability``, marker ``reliability``).

Every test here runs the real daemon (``daemon_proc.DaemonProc``) against a real
mosquitto with persistence that writes its database after every change
(``autosave_on_changes``), so a SIGKILLed broker loses as little as mosquitto can,
and accounts for every announcement with ``ledger.Ledger``. Run only this suite with
``pytest -m reliability``; the README's test command runs it with everything else.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from broker import DURABLE_CONF, Broker  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.reliability)


@pytest.fixture
def durable_broker(tmp_path: Path, mosquitto_bin: str) -> Iterator[Broker]:
    """A broker for one test that writes its persistence after every change (survives SIGKILL)."""
    b = Broker(tmp_path / "mosquitto", mosquitto_bin, extra_conf=DURABLE_CONF).start()
    try:
        yield b
    finally:
        b.close()
