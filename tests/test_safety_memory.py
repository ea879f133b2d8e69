"""Issue 15, finding 2: one request took 2-3 GB. ``POST /tts`` with 2000 characters, ``repeat: 10``
and ``repeat_gap: 60`` rendered 4647 s of audio (RSS 249 MB -> 1.99 GB, a 223 MB WAV kept over
``audio_max_mb``); three at once 2.9 GB; the same over MQTT to a file speaker 2.97 GB.

Now the render budget (``limits.max_audio_seconds``, 600 s) refuses those by name before any
synthesis, and what it accepts streams to disk. ``announcer run`` as a process (the embedded
voice, a real mosquitto, the HTTP API, file speakers ``a``/``b`` and an ``mqtt`` speaker ``m``)
gets the worst requests it accepts, all at once: the longest text (2000 characters, just under
the budget) over MQTT to every speaker and three times over ``/tts``. The daemon's peak RSS
(``VmHWM``) must stay under 400 MiB; the figures are printed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import soundfile as sf
from broker import Broker, free_port
from daemon_proc import DaemonProc, Events, new_id

from announcer.intake.parse import estimated_seconds

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # about 3 minutes: the slow lane (make test-slow)

LIMIT_MIB = 400.0
SENTENCE = "各位旅客请注意，开往北京的列车即将进站，请站在黄线以外，谢谢合作。"


def vm(pid: int, key: str) -> float:
    """``/proc/<pid>/status`` field in MiB (``VmHWM``: the peak resident set so far)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    raise KeyError(key)


@pytest.fixture
def daemon(shared_broker: Broker, tmp_path: Path, announcer_cache: Path) -> Iterator[DaemonProc]:
    port = free_port()
    d = DaemonProc(
        shared_broker,
        tmp_path / "d",
        announcer_cache,
        limits={"max_text_chars": 2000, "max_payload_bytes": 65536, "per_minute": 1000},
        sections=f"http: {{enabled: true, port: {port}, max_body_bytes: 65536}}\n",
    )
    d.http_url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    d.start()
    d.wait_log("http: listening on", timeout=30)
    yield d
    d.close()


def post(daemon: DaemonProc, body: dict, timeout: float = 400) -> httpx.Response:
    url = daemon.http_url + "/tts"  # type: ignore[attr-defined]
    return httpx.post(url, json=body, headers={"Host": "localhost"}, timeout=timeout)


def test_no_request_exhausts_the_box(daemon: DaemonProc, shared_broker: Broker, capsys: pytest.CaptureFixture) -> None:
    assert daemon.proc is not None
    pid = daemon.proc.pid
    client = shared_broker.client()
    events = Events(client.collect(daemon.topic("events")))
    longest = (SENTENCE * 100)[:2000]
    assert estimated_seconds(longest, 1.0, 1, 1.0) < 600

    # the request, over HTTP and MQTT: refused by name, nothing synthesized
    r = post(daemon, {"text": longest, "repeat": 10, "repeat_gap": 60}, timeout=30)
    assert r.status_code == 413 and r.json()["field"] == "repeat", r.text
    assert "limits.max_audio_seconds" in r.json()["error"]
    big = new_id("big")
    client.publish_json(daemon.topic("say", "all"), {"id": big, "text": longest, "repeat": 10, "repeat_gap": 60})
    rejected = events.wait(big, "rejected", timeout=30)
    assert rejected["reason"] == "oversize" and rejected["error"].startswith("repeat:"), rejected
    r = post(daemon, {"text": longest, "speed": 0.5}, timeout=30)  # slower is longer
    assert r.status_code == 413, r.text

    warm = vm(pid, "VmHWM")  # the peak of starting up (the voice loaded, the reference measured)

    # the worst accepted, all at once: MQTT to every speaker, and three /tts
    worst = new_id("worst")
    client.publish_json(daemon.topic("say", "all"), {"id": worst, "text": longest, "chime": True})
    replies: list[httpx.Response] = []
    threads = [threading.Thread(target=lambda: replies.append(post(daemon, {"text": longest}))) for _ in range(3)]
    for t in threads:
        t.start()
    for speaker in ("a", "b", "m"):
        ev = events.messages.wait_for(
            lambda m, s=speaker: (
                m.json().get("id") == worst
                and m.json().get("speaker") == s
                and m.json()["state"] in ("finished", "failed")
            ),
            timeout=400,
        ).json()
        assert ev["state"] == "finished", ev
    for t in threads:
        t.join(400)
    assert [r.status_code for r in replies] == [200, 200, 200], [r.text[:200] for r in replies]
    seconds = replies[0].json()["duration"]
    assert seconds > 300, seconds  # it really was long
    info = sf.info(str(daemon.wav("a", worst)))
    assert info.duration > 300

    peak = vm(pid, "VmHWM")
    now = vm(pid, "VmRSS")
    with capsys.disabled():
        print(
            f"\n[memory] daemon VmHWM after start-up {warm:.0f} MiB; after the worst accepted requests "
            f"(one {info.duration:.0f} s announcement on 3 speakers + 3 x /tts of {seconds:.0f} s at once) "
            f"{peak:.0f} MiB; RSS now {now:.0f} MiB (limit {LIMIT_MIB:.0f} MiB)"
        )
    assert peak < LIMIT_MIB, f"peak RSS {peak:.0f} MiB"
