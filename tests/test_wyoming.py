"""Wyoming: announcer's TTS server, exercised with the wyoming library's own client, and the
``wyoming`` engine against that server running in another process (the real embedded-zh voice)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

from announcer import __version__
from announcer.audio.chimes import ChimeLibrary
from announcer.config import parse_config
from announcer.core.emotions import EMOTIONS
from announcer.core.errors import EngineUnavailable
from announcer.engines.base import Style, create_engine
from announcer.engines.embedded_zh import Config as ZhConfig
from announcer.engines.espeak import Config as EspeakConfig
from announcer.engines.wyoming import Config as WyomingEngineConfig
from announcer.engines.wyoming import WyomingEngine
from announcer.engines.wyoming_protocol import WyomingError
from announcer.integrations.wyoming.server import SAMPLES_PER_CHUNK, WyomingServer
from announcer.playback.runtime import LiveRuntime, Runtime
from announcer.playback.synthesizer import Synthesizer
from announcer.text.clauses import split_complete, split_sentences

ROOT = Path(__file__).resolve().parent.parent
SENTENCE = "各位旅客请注意，开往北京的列车即将进站。"  # 3.7 s neutral (README)
TIMEOUT = 60.0


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesizer:
    cache_dir = tmp_path_factory.mktemp("engine-cache")
    engines = {
        "zh": create_engine("zh", ZhConfig(type="embedded-zh"), cache_dir),
        "en": create_engine("en", EspeakConfig(type="espeak"), cache_dir),
    }
    for eng in engines.values():
        eng.load()
    return Synthesizer(engines, cache=None)


@pytest.fixture(scope="module")
def server(synth: Synthesizer) -> Iterator[WyomingServer]:
    srv = WyomingServer(live_of(synth), "tcp://127.0.0.1:0")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def live_of(synth: Synthesizer, yaml: str = "defaults: {engine: zh}") -> LiveRuntime:
    """What the daemon hands the server: its live runtime (here: these engines, no speakers)."""
    cfg = parse_config(yaml)
    return LiveRuntime(Runtime(cfg, synth, {}, ChimeLibrary()))


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


async def read_until(client: AsyncTcpClient, *types: str) -> list[Event]:
    """Events up to and including the first one of ``types``."""
    out: list[Event] = []
    while True:
        event = await client.read_event()
        assert event is not None, f"connection closed after {[e.type for e in out]}"
        out.append(event)
        if event.type in types:
            return out


async def ask(port: int, event: Event, *until: str) -> list[Event]:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(event)
        return await read_until(client, *until)


def pcm(events: list[Event]) -> tuple[np.ndarray, int]:
    """Samples (float) and rate of the audio events; checks the format of every event."""
    starts = [AudioStart.from_event(e) for e in events if AudioStart.is_type(e.type)]
    assert starts, [e.type for e in events]
    rate = starts[0].rate
    assert (starts[0].width, starts[0].channels) == (2, 1)
    chunks = [AudioChunk.from_event(e) for e in events if AudioChunk.is_type(e.type)]
    for c in chunks:
        assert (c.rate, c.width, c.channels) == (rate, 2, 1)
        assert 0 < c.samples <= SAMPLES_PER_CHUNK
    data = b"".join(c.audio for c in chunks)
    return np.frombuffer(data, "<i2").astype(np.float32) / 32768.0, rate


def speak(port: int, text: str, voice: SynthesizeVoice | None = None) -> tuple[np.ndarray, int]:
    events = run(ask(port, Synthesize(text=text, voice=voice).event(), AudioStop().event().type, "error"))
    assert not Error.is_type(events[-1].type), events[-1].data
    assert AudioStart.is_type(events[0].type) and AudioStop.is_type(events[-1].type)
    return pcm(events)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- sentence splitting ---------------------------------------------------------------------


def test_sentences_split_on_chinese_and_western_ends_but_keep_decimals() -> None:
    assert split_sentences("各位旅客请注意。列车即将进站！ It is 3.14 now. OK?") == [
        "各位旅客请注意。",
        "列车即将进站！",
        "It is 3.14 now.",
        "OK?",
    ]
    assert split_complete("请注意。开往北京") == (["请注意。"], "开往北京")
    assert split_complete("It is 3.") == ([], "It is 3.")  # "3." may continue as "3.14"
    assert split_complete("Done. Next") == (["Done."], " Next")


# --- the server ---------------------------------------------------------------------------------


def test_describe_lists_the_program_voices_with_emotion_variants_and_languages(server: WyomingServer) -> None:
    events = run(ask(server.port, Describe().event(), "info"))
    info = Info.from_event(events[-1])
    assert len(info.tts) == 1
    program = info.tts[0]
    assert program.name == "announcer" and program.version == __version__ and program.installed
    assert program.attribution.name == "announcer"
    assert program.supports_synthesize_streaming
    voices = {v.name: v for v in program.voices}
    assert ["baker"] + [f"baker-{e}" for e in EMOTIONS if e != "neutral"] == list(voices)[: len(EMOTIONS)]
    assert voices["baker-sad"].languages == ["zh", "zh-CN"] and voices["baker-sad"].installed
    # espeak voices are language codes: each speaks its own language, with every emotion
    assert voices["en-us"].languages == ["en-us"] and voices["en-us-happy"].languages == ["en-us"]
    assert {"zh", "en-us", "yue"} <= {lang for v in program.voices for lang in v.languages}


def test_synthesize_streams_16_bit_mono_audio_of_plausible_length(server: WyomingServer) -> None:
    samples, rate = speak(server.port, SENTENCE, SynthesizeVoice(name="baker"))
    assert rate == 24000
    assert 2.5 < len(samples) / rate < 5.5
    assert np.sqrt(np.mean(samples**2)) > 0.01  # speech, not silence


def test_emotion_voice_and_emotion_speaker_change_the_delivery(server: WyomingServer) -> None:
    neutral, _ = speak(server.port, SENTENCE, SynthesizeVoice(name="baker"))
    sad, _ = speak(server.port, SENTENCE, SynthesizeVoice(name="baker-sad"))
    happy, _ = speak(server.port, SENTENCE, SynthesizeVoice(name="baker-happy"))
    assert len(sad) > 1.1 * len(neutral)  # sad is slower (1.25x in the README table)
    assert len(happy) < 0.97 * len(neutral)
    by_speaker, _ = speak(server.port, SENTENCE, SynthesizeVoice(name="baker", speaker="难过"))
    assert len(by_speaker) == len(sad)


def test_language_only_and_no_voice_pick_a_matching_engine(server: WyomingServer) -> None:
    _, rate = speak(server.port, "Hello there.", SynthesizeVoice(language="en-us"))
    assert rate == server.live.current.synth.engine("en").sample_rate
    _, rate = speak(server.port, SENTENCE)  # the default engine
    assert rate == 24000


def test_unknown_voice_speaks_with_the_default_voice_and_the_connection_stays_usable(
    server: WyomingServer,
) -> None:
    # (issue 15: Home Assistant's client ignores `error` events and hung waiting for audio)
    async def go() -> tuple[list[Event], list[Event]]:
        async with AsyncTcpClient("127.0.0.1", server.port) as client:
            await client.write_event(Synthesize(text="你好。", voice=SynthesizeVoice(name="nobody")).event())
            first = await read_until(client, "error", "audio-stop")
            await client.write_event(Describe().event())
            return first, await read_until(client, "info")

    first, second = run(go())
    assert AudioStart.is_type(first[0].type) and AudioStop.is_type(first[-1].type), [e.type for e in first]
    assert AudioStart.from_event(first[0]).rate == 24000  # the default engine (zh)
    assert Info.is_type(second[-1].type)


def test_streaming_synthesis_speaks_each_sentence_as_soon_as_it_is_complete(server: WyomingServer) -> None:
    async def go() -> tuple[list[Event], list[Event], list[Event]]:
        async with AsyncTcpClient("127.0.0.1", server.port) as client:
            await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name="baker")).event())
            await client.write_event(SynthesizeChunk(text="各位旅客").event())
            await client.write_event(SynthesizeChunk(text="请注意。开往北京").event())
            # the first sentence is complete: its audio comes before any more text is sent
            first = await read_until(client, "audio-stop")
            await client.write_event(SynthesizeChunk(text="的列车即将进站！还有").event())
            second = await read_until(client, "audio-stop")
            await client.write_event(SynthesizeChunk(text="一班").event())
            # the compatibility synthesize inside a stream is ignored
            await client.write_event(Synthesize(text="各位旅客请注意。开往北京的列车即将进站！还有一班").event())
            await client.write_event(SynthesizeStop().event())
            rest = await read_until(client, "synthesize-stopped")
            return first, second, rest

    first, second, rest = run(go())
    one, rate = pcm(first)
    two, _ = pcm(second)
    three, _ = pcm(rest[:-1])
    assert 0.8 < len(one) / rate < 3.0 and 1.2 < len(two) / rate < 4.0 and 0.3 < len(three) / rate < 2.0
    assert [e.type for e in rest if e.type in ("audio-start", "audio-stop")] == ["audio-start", "audio-stop"]
    assert SynthesizeStopped.is_type(rest[-1].type)


def test_a_long_synthesis_does_not_block_other_clients(server: WyomingServer) -> None:
    long_text = "。".join(f"第{i}号列车即将进站，请站在黄线以外" for i in range(30)) + "。"

    async def go() -> tuple[float, bool]:
        async with AsyncTcpClient("127.0.0.1", server.port) as busy:
            await busy.write_event(Synthesize(text=long_text, voice=SynthesizeVoice(name="baker")).event())
            await read_until(busy, "audio-start")
            t0 = time.perf_counter()
            await ask(server.port, Describe().event(), "info")
            answered = time.perf_counter() - t0
            rest = await read_until(busy, "audio-stop")
            return answered, any(AudioChunk.is_type(e.type) for e in rest)

    answered, more_audio = run(go())
    assert answered < 0.5 and more_audio


# --- the wyoming engine against announcer's server in another process ------------------------


class ServerProcess:
    """``python -m announcer.wyoming_server`` with the embedded-zh engine, on a given or free port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.config = workdir / "announcer.yaml"
        self.config.write_text(
            f"engines: {{zh: {{type: embedded-zh}}}}\ncache: {{directory: {workdir / 'cache'}}}\n", encoding="utf-8"
        )
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def start(self, port: int = 0) -> ServerProcess:
        with open(self.workdir / "server.log", "a") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "announcer.wyoming_server", "-c", str(self.config), "--port", str(port)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("listening on tcp://127.0.0.1:"), line + (self.workdir / "server.log").read_text()
        self.port = int(line.rsplit(":", 1)[1])
        return self

    @property
    def uri(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(20) == 0
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("wyoming-server")).start()
    try:
        yield proc
    finally:
        proc.stop()


def wyoming_engine(uri: str, **kw: Any) -> WyomingEngine:
    eng = create_engine("remote", WyomingEngineConfig(type="wyoming", uri=uri, **kw))
    assert isinstance(eng, WyomingEngine)
    return eng


def test_engine_learns_voices_languages_emotions_and_rate_from_the_server(remote: ServerProcess) -> None:
    eng = wyoming_engine(remote.uri)
    eng.load()
    assert eng.voices == ("baker",)  # emotion variants are not separate voices
    assert eng.languages == ("zh", "zh-CN")
    assert eng.emotions == EMOTIONS
    assert eng.sample_rate == 24000


def test_engine_synthesizes_clauses_and_passes_the_emotion(remote: ServerProcess) -> None:
    eng = wyoming_engine(remote.uri, voice="baker")
    synth = Synthesizer({"remote": eng})
    audio = synth.render_all(SENTENCE + "请在黄线以外等候。", "remote", Style())
    assert audio.sample_rate == 24000 and audio.samples.dtype == np.float32
    assert 4.0 < audio.duration < 9.0 and np.sqrt(np.mean(audio.samples**2)) > 0.01
    assert eng.clauses(SENTENCE + "请在黄线以外等候。") == [SENTENCE, "请在黄线以外等候。"]
    neutral = eng.synthesize_clause(SENTENCE, Style())
    sad = eng.synthesize_clause(SENTENCE, Style("sad"))
    slow = eng.synthesize_clause(SENTENCE, Style(speed=0.6))
    assert len(sad) > 1.1 * len(neutral)
    assert len(slow) > 1.3 * len(neutral)  # speed travels in the request context


def test_engine_resamples_a_voice_at_another_rate(server: WyomingServer, synth: Synthesizer) -> None:
    eng = wyoming_engine(server.bound_uri)  # in-process server: baker at 24 kHz, espeak at 22.05 kHz
    assert eng.sample_rate == 24000 and "en-us" in eng.voices and "en-us-sad" not in eng.voices
    local = synth.render_all("Hello there.", "en", Style(), "en-us")
    remote = eng.synthesize_clause("Hello there.", Style(), "en-us")
    assert abs(len(remote) / 24000 - local.duration) < 0.01


def test_engine_over_a_unix_socket(synth: Synthesizer, tmp_path: Path) -> None:
    uri = f"unix://{tmp_path / 'tts.sock'}"
    srv = WyomingServer(live_of(synth), uri)
    srv.start()
    try:
        eng = wyoming_engine(uri)
        assert len(eng.synthesize_clause("你好。", Style("angry"))) > 0.3 * eng.sample_rate
    finally:
        srv.stop()
    assert not (tmp_path / "tts.sock").exists()


def test_engine_without_emotion_voices_declares_neutral_only(remote: ServerProcess) -> None:
    eng = wyoming_engine(remote.uri, emotion_voices=False)
    eng.load()
    assert eng.emotions == ("neutral",)
    assert "baker-sad" in eng.voices  # then the variants are plain voices


def test_unreachable_server_fails_load_naming_the_uri() -> None:
    uri = f"tcp://127.0.0.1:{free_port()}"
    eng = wyoming_engine(uri, timeout=5)
    with pytest.raises(EngineUnavailable, match=uri):
        eng.load()
    assert eng.sample_rate == 22050 and eng.voices == ("default",) and eng.emotions == ("neutral",)
    with pytest.raises(EngineUnavailable, match=uri):  # every synthesis tries again
        Synthesizer({"remote": eng}).render_all("你好。", "remote", Style())


def test_unknown_configured_voice_fails_load(remote: ServerProcess) -> None:
    with pytest.raises(EngineUnavailable, match="no voice 'nobody'.*baker"):
        wyoming_engine(remote.uri, voice="nobody").load()


def test_stopped_server_fails_synthesis_naming_the_uri_and_recovery_follows(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path).start()
    try:
        eng = wyoming_engine(server.uri, timeout=10)
        eng.load()
        assert len(eng.synthesize_clause("你好。", Style())) > 0
        port, uri = server.port, server.uri
        server.stop()
        with pytest.raises(WyomingError, match=f"{uri}.*unreachable"):
            eng.synthesize_clause("你好。", Style())
        server.start(port)  # back on the same port: the next clause reconnects
        assert len(eng.synthesize_clause("你好。", Style("happy"))) > 0
    finally:
        server.stop()


# --- config and daemon --------------------------------------------------------------------------


def test_config_accepts_a_wyoming_engine_and_the_server_uri() -> None:
    cfg = parse_config(
        "engines: {remote: {type: wyoming, uri: 'tcp://tts.local:10200', voice: baker, "
        "speaker: sad, timeout: 30}}\nwyoming: {enabled: true, uri: 'tcp://0.0.0.0:10200'}\n"
    )
    assert cfg.engines["remote"].uri == "tcp://tts.local:10200"
    assert cfg.wyoming.enabled and cfg.wyoming.uri == "tcp://0.0.0.0:10200"
    from announcer.config import ConfigError

    with pytest.raises(ConfigError) as err:
        parse_config("engines: {remote: {type: wyoming, uri: 'http://x'}}\nwyoming: {host: a, uri: 'tcp://x'}\n")
    text = str(err.value)
    assert "engines.remote.uri" in text and "wyoming.host: unknown key" in text and "wyoming.uri" in text


def test_daemon_serves_wyoming_when_enabled(shared_broker: Any, tmp_path: Path) -> None:
    from announcer.config import Config
    from announcer.service.daemon import Daemon

    cfg = Config.model_validate(
        {
            "mqtt": shared_broker.mqtt_config(client_id="wyoming-daemon", topic_prefix="wyoming-test"),
            "speakers": {"a": {"type": "file", "directory": str(tmp_path / "wav")}},
            "spool": {"path": str(tmp_path / "spool.sqlite3")},
            "cache": {"directory": str(tmp_path / "cache")},
            "homeassistant": {"enabled": False},
            "wyoming": {"enabled": True, "uri": "tcp://127.0.0.1:0"},
        }
    )
    daemon = Daemon(cfg)
    daemon.start()
    try:
        assert daemon.wait_ready(20)
        assert daemon.wyoming is not None and daemon.wyoming.live is daemon.live  # one live runtime
        port = daemon.wyoming.port
        samples, rate = speak(port, "你好。", SynthesizeVoice(name="baker-happy"))
        assert rate == 24000 and len(samples) > 0
    finally:
        daemon.stop()
    with pytest.raises(OSError):
        run(ask(port, Describe().event(), "info"))


def test_server_speaks_with_the_engines_of_a_reload(tmp_path: Path, shared_broker: Any) -> None:
    """A reload that replaces the engines reaches the Wyoming server: it lists and speaks with the
    new ones. Before, the server kept the synthesizer it was started with, whose engines the
    reload had just closed."""
    import json

    from announcer.config import load_config
    from announcer.service.daemon import Daemon

    base = {
        "mqtt": shared_broker.mqtt_config(client_id="wyoming-reload", topic_prefix="wyoming-reload"),
        "speakers": {"a": {"type": "file", "directory": str(tmp_path / "wav")}},
        "spool": {"path": str(tmp_path / "spool.sqlite3")},
        "cache": {"directory": str(tmp_path / "cache")},
        "homeassistant": {"enabled": False},
        "wyoming": {"enabled": True, "uri": "tcp://127.0.0.1:0"},
    }
    path = tmp_path / "announcer.yaml"
    path.write_text(json.dumps({**base, "engines": {"zh": {"type": "embedded-zh"}}}), encoding="utf-8")
    daemon = Daemon(load_config(path), config_path=path)
    daemon.start()
    try:
        assert daemon.wait_ready(20)
        port = daemon.wyoming.port
        voices = {v.name for v in Info.from_event(run(ask(port, Describe().event(), "info"))[-1]).tts[0].voices}
        assert "baker" in voices and "en-us" not in voices
        old_engine = daemon.live.current.synth.engines["zh"]

        path.write_text(json.dumps({**base, "engines": {"en": {"type": "espeak", "voice": "en-us"}}}), encoding="utf-8")
        assert daemon.reload()
        assert (
            "zh" not in daemon.live.current.synth.engines
            and old_engine not in daemon.live.current.synth.engines.values()
        )
        voices = {v.name for v in Info.from_event(run(ask(port, Describe().event(), "info"))[-1]).tts[0].voices}
        assert "en-us" in voices and "baker" not in voices
        samples, rate = speak(port, "Hello there.")  # no voice: the new default engine
        assert rate == 22050 and len(samples) > 0.3 * rate
        # the old voice is gone: the new default voice speaks instead (with a warning in the log)
        _, rate = speak(port, "Hello.", SynthesizeVoice(name="baker"))
        assert rate == 22050
    finally:
        daemon.stop()
