"""Issue 15 on the Wyoming server: finding 4 (it buffered any size: a header announcing a 300 MB
``payload_length`` took RSS from 251 to 832 MB; no cap on ``data_length``; streaming text ignored
``max_text_chars``), finding 5 (an unknown voice was answered with ``error``, which Home
Assistant's client ignores, so its request hung) and finding 10 (each malformed header logged
an ERROR with a traceback).

The real server (``WyomingServer`` on a loopback port, the embedded voice) and raw sockets or
wyoming's own client.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from wyoming.audio import AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeVoice

from announcer.audio.chimes import ChimeLibrary
from announcer.config import parse_config
from announcer.engines.base import create_engine
from announcer.engines.embedded_zh import Config as ZhConfig
from announcer.integrations.wyoming.server import WyomingServer
from announcer.playback.runtime import LiveRuntime, Runtime
from announcer.playback.synthesizer import Synthesizer

MAX_TEXT = 60


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WyomingServer]:
    eng = create_engine("zh", ZhConfig(type="embedded-zh"), tmp_path_factory.mktemp("cache"))
    eng.load()
    cfg = parse_config(f"defaults: {{engine: zh}}\nlimits: {{max_text_chars: {MAX_TEXT}}}")
    srv = WyomingServer(LiveRuntime(Runtime(cfg, Synthesizer({"zh": eng}), {}, ChimeLibrary())), "tcp://127.0.0.1:0")
    srv.start()
    yield srv
    srv.stop()


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise KeyError("VmRSS")


def raw(server: WyomingServer, header: bytes, then: bytes = b"", send_seconds: float = 3.0) -> tuple[bytes, bool]:
    """Send ``header`` then ``then`` (in a thread, as far as the server takes it); returns what came
    back and whether the server closed the connection."""
    s = socket.create_connection(("127.0.0.1", server.port or 0))
    s.settimeout(5)

    def push() -> None:
        try:
            s.sendall(header)
            view = memoryview(then)
            for i in range(0, len(view), 1 << 20):
                s.sendall(view[i : i + (1 << 20)])
        except OSError:
            pass  # the server closed it: what we want

    t = threading.Thread(target=push, daemon=True)
    t.start()
    got = b""
    closed = False
    try:
        while True:
            part = s.recv(65536)
            if not part:
                closed = True
                break
            got += part
    except ConnectionResetError:
        closed = True
    except TimeoutError:
        pass
    t.join(send_seconds)
    s.close()
    return got, closed


def first_error(reply: bytes) -> dict:
    header = json.loads(reply.split(b"\n", 1)[0])
    assert header["type"] == "error", reply[:200]
    rest = reply.split(b"\n", 1)[1]
    return json.loads(rest[: header["data_length"]]) if header.get("data_length") else header["data"]


def test_a_300_mb_payload_is_refused_before_it_is_read(server: WyomingServer) -> None:
    before = rss_mib()
    header = json.dumps({"type": "synthesize", "data": {"text": "你好"}, "payload_length": 300_000_000}).encode()
    reply, closed = raw(server, header + b"\n", b"\0" * (64 << 20))
    assert closed
    assert "payload_length 300000000 is over the limit" in first_error(reply)["text"]
    assert rss_mib() - before < 50  # (it read all 300 MB: +580 MB)


def test_data_length_and_the_header_line_are_capped(server: WyomingServer) -> None:
    reply, closed = raw(server, json.dumps({"type": "synthesize", "data_length": 10**9}).encode() + b"\n")
    assert closed and "data_length 1000000000 is over the limit" in first_error(reply)["text"]
    reply, closed = raw(server, b'{"type": "synthesize", "data": {"text": "' + b"a" * (1 << 20))
    assert closed and "header line over" in first_error(reply)["text"]


@pytest.mark.parametrize(
    "header",
    [b"[1, 2, 3]\n", b"not json\n", b'{"data": {}}\n', b'{"type": "x", "data_length": "7"}\n', b'{"type": 5}\n'],
)
def test_a_malformed_header_gets_an_error_and_the_connection_closed(server: WyomingServer, header: bytes) -> None:
    reply, closed = raw(server, header)
    assert closed and first_error(reply)["code"] == "BadEvent"


def test_malformed_headers_are_one_log_line_without_traceback(
    server: WyomingServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.log.interval = 60.0
    server.log._last.clear()
    with caplog.at_level(logging.DEBUG, logger="announcer"):
        for i in range(100):
            raw(server, [b"[1]\n", b'{"type": 5}\n', b"}{\n"][i % 3])
    lines = [r for r in caplog.records if "wyoming" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert not any(r.exc_info for r in caplog.records)


def test_streaming_text_is_bounded_by_max_text_chars(server: WyomingServer) -> None:
    async def go() -> list[Event]:
        async with AsyncTcpClient("127.0.0.1", server.port or 0) as client:
            await client.write_event(SynthesizeStart().event())
            for _ in range(100):  # 6000 characters, no sentence end: it used to take them all
                await client.write_event(SynthesizeChunk(text="请" * 60).event())
            await client.write_event(SynthesizeStop().event())
            out: list[Event] = []
            while True:
                event = await client.read_event()
                assert event is not None
                out.append(event)
                if event.type == "synthesize-stopped":
                    return out

    events = asyncio.run(asyncio.wait_for(go(), 120))
    errors = [Error.from_event(e).text for e in events if Error.is_type(e.type)]
    assert errors and "max_text_chars" in errors[0], [e.type for e in events]


def test_an_unknown_voice_never_leaves_a_client_waiting(
    server: WyomingServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> list[Event]:
        async with AsyncTcpClient("127.0.0.1", server.port or 0) as client:
            # what Home Assistant 2025.4 does: synthesize, then wait for audio-stop (it ignores `error`)
            await client.write_event(Synthesize(text="你好。", voice=SynthesizeVoice(name="nobody")).event())
            out: list[Event] = []
            while True:
                event = await client.read_event()
                assert event is not None
                if Error.is_type(event.type):
                    continue
                out.append(event)
                if AudioStop.is_type(event.type):
                    return out

    with caplog.at_level(logging.WARNING, logger="announcer"):
        events = asyncio.run(asyncio.wait_for(go(), 30))
    assert AudioStart.is_type(events[0].type) and len(events) > 3  # audio, in the default voice
    assert any("unknown voice 'nobody'" in r.getMessage() for r in caplog.records)
