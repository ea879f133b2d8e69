"""Wyoming TTS server: Home Assistant Assist (or any Wyoming client) speaks with announcer's engines.

* ``describe`` → ``info`` with one TTS program ``announcer`` whose voices are every
  engine voice plus one voice per emotion: ``baker``, ``baker-happy``, ``baker-sad`` …
  (``VOICE-EMOTION`` for each emotion the engine renders natively). A voice name that an
  earlier engine already uses is listed as ``ENGINE:VOICE``. The speaker field may also
  carry an emotion (``{"name": "baker", "speaker": "sad"}``; aliases such as 开心 work).
* ``synthesize`` → ``audio-start`` / ``audio-chunk``s / ``audio-stop``: 16-bit mono PCM
  at the engine's rate, 1024 samples per chunk, sent as each clause is rendered.
* Streaming: ``synthesize-start`` / ``synthesize-chunk``… / ``synthesize-stop``: every
  sentence completed by the arriving text is rendered at once (its own audio-start …
  audio-stop), the rest at ``synthesize-stop``, then ``synthesize-stopped``. The
  compatibility ``synthesize`` a streaming client sends inside the stream is ignored.
* A request's ``context`` may hold ``announcer_style: {intensity, speed}`` (announcer's
  own ``wyoming`` engine sends it).

Rendering goes through the daemon's ``Synthesizer`` (its per-engine locks and cache) in a
small thread pool, never on the event loop, which runs in its own thread (``start`` /
``stop``), so announcements and Wyoming requests interleave clause by clause.

``python -m announcer.wyoming_server [-c CONFIG] [--uri URI | --host H --port N]`` runs
the server alone with the config's engines and prints ``listening on URI`` when ready.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, TtsProgram, TtsVoice
from wyoming.server import AsyncEventHandler
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

from ... import __version__
from ...audio.samples import to_pcm16
from ...core.emotions import EMOTIONS, resolve_emotion
from ...core.errors import EngineUnavailable, InputError
from ...engines.base import Style
from ...engines.wyoming_protocol import ANNOUNCER_PROGRAM, STYLE_CONTEXT_KEY, parse_uri
from ...intake.parse import clean_text
from ...playback.synthesizer import Synthesizer
from ...text.clauses import MAX_SENTENCE_CHARS, cut_long, split_complete

_LOGGER = logging.getLogger(__name__)

SAMPLES_PER_CHUNK = 1024
ATTRIBUTION = Attribution(name="announcer", url="")  # no public home page yet


@dataclass(frozen=True)
class VoiceEntry:
    """One Wyoming voice: which engine voice and emotion it stands for."""

    name: str
    engine: str
    voice: str
    emotion: str
    languages: tuple[str, ...]


def voice_table(synth: Synthesizer) -> dict[str, VoiceEntry]:
    """Wyoming voice name → engine/voice/emotion, neutral voices first within each engine voice."""
    table: dict[str, VoiceEntry] = {}
    for engine_name, eng in synth.engines.items():
        languages = tuple(eng.languages)
        emotions = ["neutral"] + [e for e in EMOTIONS if e != "neutral" and e in eng.emotions]
        for voice in eng.voices:
            # a voice that is itself a language code (espeak) speaks that language
            langs = (voice,) if voice in languages and len(languages) > 1 else languages
            base = voice if voice not in table else f"{engine_name}:{voice}"
            for emotion in emotions:
                name = base if emotion == "neutral" else f"{base}-{emotion}"
                if name not in table:
                    table[name] = VoiceEntry(name, engine_name, voice, emotion, langs)
    return table


def build_info(table: dict[str, VoiceEntry]) -> Info:
    voices = [
        TtsVoice(name=v.name, description=f"{v.voice} ({v.engine}, {v.emotion})", attribution=ATTRIBUTION,
                 installed=True, version=None, languages=list(v.languages), speakers=None)
        for v in table.values()
    ]
    program = TtsProgram(name=ANNOUNCER_PROGRAM, description="announcer: local voice announcements with emotions",
                         attribution=ATTRIBUTION, installed=True, version=__version__, voices=voices,
                         supports_synthesize_streaming=True)
    return Info(tts=[program])


def _same_language(a: str, b: str) -> bool:
    a, b = a.lower().replace("_", "-"), b.lower().replace("_", "-")
    return a == b or a.split("-")[0] == b.split("-")[0]


@dataclass(frozen=True)
class Request:
    """A resolved request: engine, engine voice and style."""

    engine: str
    voice: str
    style: Style


class WyomingServer:
    """Serves ``synth``'s engines at ``uri`` (tcp://host:port, port 0 picks one; unix:///path)."""

    def __init__(self, synth: Synthesizer, uri: str, *, default_engine: str | None = None,
                 max_text_chars: int | None = None, workers: int = 2) -> None:
        parse_uri(uri)
        self.synth = synth
        self.uri = uri
        self.default_engine = default_engine or next(iter(synth.engines))
        self.max_text_chars = max_text_chars
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="wyoming-synth")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._table: dict[str, VoiceEntry] | None = None
        self.bound_uri = uri

    # ---- lifecycle -------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        """Listen in a background thread with its own event loop; raises OSError if the address is taken."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._listen())
            except BaseException as exc:  # noqa: BLE001 - re-raised in start()'s caller
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="wyoming-server", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError(f"wyoming: server at {self.uri} did not start within {timeout:g} s")
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        _LOGGER.info("wyoming: TTS server listening on %s (%d voices)", self.bound_uri, len(self.voices()))

    async def _listen(self) -> None:
        kind, address = parse_uri(self.uri)
        if kind == "tcp":
            self._server = await asyncio.start_server(self._on_client, address[0], address[1])
            port = self._server.sockets[0].getsockname()[1]
            self.bound_uri = f"tcp://{address[0]}:{port}"
        else:
            path = Path(address)
            if path.is_socket():  # left over from an earlier run
                path.unlink()
            self._server = await asyncio.start_unix_server(self._on_client, address)

    @property
    def port(self) -> int | None:
        kind, address = parse_uri(self.bound_uri)
        return address[1] if kind == "tcp" else None

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await _Handler(self, reader, writer).run()
        except (ConnectionError, asyncio.IncompleteReadError):
            _LOGGER.debug("wyoming: client went away")
        except Exception:
            _LOGGER.exception("wyoming: connection failed")
        finally:
            self._handlers.discard(task)

    def stop(self, timeout: float = 5.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout)
        except Exception:
            _LOGGER.warning("wyoming: server did not shut down cleanly", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._thread = self._loop = None
        kind, address = parse_uri(self.uri)
        if kind == "unix" and Path(address).is_socket():
            Path(address).unlink()
        _LOGGER.info("wyoming: TTS server stopped")

    # ---- voices ------------------------------------------------------------------------
    def voices(self, refresh: bool = False) -> dict[str, VoiceEntry]:
        if self._table is None or refresh:
            self._table = voice_table(self.synth)
        return self._table

    def info(self) -> Info:
        return build_info(self.voices(refresh=True))

    def resolve(self, voice: SynthesizeVoice | None, context: dict[str, Any] | None = None) -> Request:
        """Engine, voice and style for a request; InputError for an unknown voice name."""
        table = self.voices()
        entry: VoiceEntry | None = None
        if voice is not None and voice.name:
            entry = table.get(voice.name)
            if entry is None:  # baker-开心: an emotion alias after the last dash
                base, _, suffix = voice.name.rpartition("-")
                emotion, warning = resolve_emotion(suffix)
                if base in table and warning is None:
                    entry = VoiceEntry(voice.name, table[base].engine, table[base].voice, emotion, ())
            if entry is None:
                raise InputError("voice", f"unknown voice {voice.name!r} (have: {', '.join(table)})")
        elif voice is not None and voice.language:
            entry = next((v for v in table.values() if v.emotion == "neutral"
                          and any(_same_language(voice.language, lang) for lang in v.languages)), None)
        if entry is None:
            eng = self.synth.engine(self.default_engine)
            entry = VoiceEntry("", self.default_engine, eng.default_voice, "neutral", ())
        emotion = entry.emotion
        if voice is not None and voice.speaker:
            spoken, warning = resolve_emotion(voice.speaker)
            if warning is None:
                emotion = spoken
        intensity, speed = 1.0, 1.0
        style = (context or {}).get(STYLE_CONTEXT_KEY)
        if isinstance(style, dict):
            try:
                intensity = min(2.0, max(0.0, float(style.get("intensity", 1.0))))
                speed = min(2.0, max(0.5, float(style.get("speed", 1.0))))
            except (TypeError, ValueError):
                intensity, speed = 1.0, 1.0
        return Request(entry.engine, entry.voice, Style(emotion, intensity, speed))

    def clean(self, text: str) -> str:
        text = clean_text(text)
        if self.max_text_chars is not None and len(text) > self.max_text_chars:
            raise InputError("text", f"{len(text)} characters; at most {self.max_text_chars}", "oversize")
        return text

    # ---- synthesis (blocking parts run in the pool) ------------------------------------
    async def run_blocking(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def audio_events(self, text: str, req: Request) -> Any:
        """Async iterator of (audio-start, audio-chunk…) events for ``text``; the caller sends audio-stop."""
        eng = self.synth.engine(req.engine)
        await self.run_blocking(eng.load)
        rate = eng.sample_rate
        yield AudioStart(rate=rate, width=2, channels=1).event()
        if not text:
            return
        clauses: Iterator[Any] = self.synth.render(text, req.engine, req.style, req.voice)
        try:
            while True:
                chunk = await self.run_blocking(next, clauses, None)
                if chunk is None:
                    break
                pcm = to_pcm16(chunk.samples).tobytes()
                step = SAMPLES_PER_CHUNK * 2
                for i in range(0, len(pcm), step):
                    yield AudioChunk(rate=chunk.sample_rate, width=2, channels=1, audio=pcm[i:i + step]).event()
        finally:
            try:
                clauses.close()  # type: ignore[attr-defined]
            except ValueError:  # cancelled while a pool thread still runs it: it ends with that clause
                pass


class _Handler(AsyncEventHandler):
    """One client connection."""

    def __init__(self, server: WyomingServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(reader, writer)
        self.server = server
        self.streaming = False
        self.stream_request: Request | None = None
        self.stream_error = False
        self.buffer = ""

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(self.server.info().event())
            return True
        try:
            if Synthesize.is_type(event.type):
                if self.streaming:
                    return True  # sent inside a stream for older servers only
                request = Synthesize.from_event(event)
                req = self.server.resolve(request.voice, request.context)
                await self.speak(self.server.clean(request.text), req)
            elif SynthesizeStart.is_type(event.type):
                start = SynthesizeStart.from_event(event)
                self.streaming, self.buffer, self.stream_error = True, "", False
                self.stream_request = None  # stays None if the voice is unknown (stream_error)
                self.stream_request = self.server.resolve(start.voice, start.context)
            elif SynthesizeChunk.is_type(event.type):
                if self.streaming and not self.stream_error:
                    self.buffer += SynthesizeChunk.from_event(event).text
                    sentences, self.buffer = split_complete(self.buffer)
                    if len(self.buffer) > MAX_SENTENCE_CHARS:  # no end in sight: cut at a comma or space
                        pieces = cut_long(self.buffer, MAX_SENTENCE_CHARS)
                        sentences, self.buffer = sentences + pieces[:-1], pieces[-1]
                    for sentence in sentences:
                        await self.speak_sentence(sentence)
            elif SynthesizeStop.is_type(event.type) and self.streaming:
                rest, self.buffer = self.buffer.strip(), ""
                if rest and not self.stream_error:
                    await self.speak_sentence(rest)
                self.streaming = False
                await self.write_event(SynthesizeStopped().event())
        except Exception as exc:  # reported to the client; the connection stays usable
            if self.streaming:
                self.stream_error = True
            expected = isinstance(exc, (InputError, EngineUnavailable, OSError))
            _LOGGER.warning("wyoming: %s failed: %s", event.type, exc, exc_info=not expected)
            await self.write_event(Error(text=str(exc), code=type(exc).__name__).event())
        return True

    async def speak_sentence(self, sentence: str) -> None:
        assert self.stream_request is not None
        await self.speak(self.server.clean(sentence), self.stream_request)

    async def speak(self, text: str, req: Request) -> None:
        async for event in self.server.audio_events(text, req):
            await self.write_event(event)
        await self.write_event(AudioStop().event())


# ---- entry point ----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    from ...config import ConfigError, find_config_path, load_config
    from ...playback.synthesizer import make_synthesizer

    parser = argparse.ArgumentParser(prog="python -m announcer.wyoming_server",
                                     description="Serve announcer's engines as a Wyoming TTS server.")
    parser.add_argument("-c", "--config", help="config file (default: as the daemon finds it, else built-in)")
    parser.add_argument("--uri", help="tcp://host:port or unix:///path (default: the config's wyoming.uri)")
    parser.add_argument("--host", default=None, help="with --port: tcp://HOST:PORT (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="TCP port (0: any free port)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(find_config_path(args.config), required=args.config is not None)
    except ConfigError as exc:
        for line in exc.errors:
            print(f"{exc.source or 'config'}: {line}", file=sys.stderr)
        return 1
    if args.uri:
        uri = args.uri
    elif args.port is not None or args.host is not None:
        uri = f"tcp://{args.host or '127.0.0.1'}:{args.port if args.port is not None else 10200}"
    else:
        uri = cfg.wyoming.uri
    synth = make_synthesizer(cfg)
    for name, eng in synth.engines.items():
        try:
            eng.load()
        except EngineUnavailable as exc:
            _LOGGER.error("engine %s unavailable: %s", name, exc)
    server = WyomingServer(synth, uri, default_engine=cfg.default_engine,
                           max_text_chars=cfg.limits.max_text_chars)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        server.start()
    except OSError as exc:
        print(f"cannot listen on {uri}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"listening on {server.bound_uri}", flush=True)
    while not stop.wait(1.0):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
