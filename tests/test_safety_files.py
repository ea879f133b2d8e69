"""Issue 15, finding 9: the daemon's state is private whatever umask it was started with. Under
umask 022 the spool (announcement texts), its WAL and SHM, ``settings.json``, the clause cache
and every WAV were 0644 and their directories 0755. Now: files 0600, directories 0700.

``announcer run`` as a process (started with umask 022), a real mosquitto, the embedded voice,
the HTTP API (``/tts`` WAVs) and Home Assistant's settings; the cache directory is fresh, so
every clause file is written by this daemon.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from broker import Broker, TestClient, free_port
from daemon_proc import DaemonProc, Events, new_id

from announcer.core.files import atomic_write, current_umask, private_umask

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def daemon(shared_broker: Broker, tmp_path: Path) -> Iterator[DaemonProc]:
    port = free_port()
    d = DaemonProc(
        shared_broker,
        tmp_path / "state",
        tmp_path / "fresh-cache",
        sections=f"http: {{enabled: true, port: {port}}}\n",
    )
    d.patch_config({"homeassistant": {"enabled": True, "discovery_prefix": f"hass-{d.prefix}"}})
    d.http_port = port  # type: ignore[attr-defined]
    old = os.umask(0o022)  # what a shell or a unit without UMask= gives
    try:
        d.start()
    finally:
        os.umask(old)
    d.wait_log("http: listening on", timeout=30)
    yield d
    d.close()


def modes(root: Path, skip: set[Path]) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if p in skip:
                continue
            out[str(p.relative_to(root))] = oct(stat.S_IMODE(p.lstat().st_mode))
    return out


def test_everything_the_daemon_writes_is_private(
    daemon: DaemonProc, shared_broker: Broker, client: TestClient, tmp_path: Path
) -> None:
    events = Events(client.collect(daemon.topic("events")))
    ann = new_id("priv")
    client.publish_json(daemon.topic("say", "files"), {"id": ann, "text": "三号病房请注意。"})
    events.wait(ann, "finished", "a", timeout=60)
    events.wait(ann, "finished", "b", timeout=60)
    client.publish(daemon.topic("set", "volume"), "90")  # settings.json
    r = httpx.post(
        f"http://127.0.0.1:{daemon.http_port}/tts",  # type: ignore[attr-defined]
        json={"text": "请安静。"},
        headers={"Host": "localhost"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    settings = daemon.spool_path.parent / "settings.json"
    deadline = time.monotonic() + 5
    while not settings.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    state = daemon.workdir
    wal = Path(str(daemon.spool_path) + "-wal")
    assert wal.exists() and daemon.spool_path.exists() and settings.exists()
    assert daemon.wav("a", ann).exists() and any((state / "http-audio").glob("*.wav"))
    cache_files = [p for p in (tmp_path / "fresh-cache").rglob("*") if p.is_file()]
    assert cache_files, "no clause was cached"

    written = modes(state, skip={daemon.config_path, daemon.log_path}) | {
        f"cache/{k}": v for k, v in modes(tmp_path / "fresh-cache", set()).items()
    }
    not_private = {
        k: v
        for k, v in written.items()
        if v != ("0o700" if (state / k).is_dir() or (tmp_path / "fresh-cache" / k[6:]).is_dir() else "0o600")
    }
    assert not not_private, not_private
    assert {"spool.sqlite3", "spool.sqlite3-wal", "settings.json", "wav-a", "http-audio"} <= set(written)
    assert oct(stat.S_IMODE((tmp_path / "fresh-cache").stat().st_mode)) == "0o700"


def test_the_umask_is_read_at_write_time(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "open.txt", b"x")
        assert current_umask() == 0o022
        assert private_umask() == 0o077
        atomic_write(tmp_path / "sub" / "private.txt", b"x")
        os.umask(0o027)
        assert private_umask() == 0o077  # narrowed, never widened
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "open.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "sub" / "private.txt").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "sub").stat().st_mode) == 0o700
