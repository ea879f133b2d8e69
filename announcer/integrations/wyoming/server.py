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

Limits (anyone who can connect is a client): events are read with ``wire.read_event``
(header line, data and payload each capped; a broken header is answered with ``error``,
logged once a minute with a count, and the connection closed); a streaming request's text
counts against ``limits.max_text_chars`` like a ``synthesize``. An unknown voice is spoken
with the default voice and a warning, not answered with ``error``: Home Assistant's client
(2025.4) ignores ``error`` events and would wait for audio until its own timeout.

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
from pathlib import Path
from typing import Any

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.server import AsyncEventHandler
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

from ...audio.samples import to_pcm16
from ...core.errors import EngineUnavailable, InputError
from ...core.ratelog import RateLimitedLog
from ...engines.wyoming_protocol import parse_uri
from ...intake.parse import clean_text
from ...playback.runtime import LiveRuntime, Runtime
from ...playback.synthesizer import Synthesizer
from ...text.clauses import MAX_SENTENCE_CHARS, cut_long, split_complete
from .voices import Request, VoiceEntry, build_info, resolve, voice_table
from .wire import MAX_HEADER_BYTES, BadEvent, read_event

_LOGGER = logging.getLogger(__name__)

SAMPLES_PER_CHUNK = 1024


class WyomingServer:
    """Serves the live runtime's engines at ``uri`` (tcp://host:port, port 0 picks one; unix:///path).

    Each request reads ``live.current`` once: after a reload it speaks with the new engines
    (and the config's ``limits.max_text_chars`` and default engine), never a closed one.
    """

    def __init__(self, live: LiveRuntime, uri: str, *, workers: int = 2) -> None:
        parse_uri(uri)
        self.live = live
        self.uri = uri
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="wyoming-synth")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._table: tuple[Synthesizer, dict[str, VoiceEntry]] | None = None  # per synthesizer
        self.bound_uri = uri
        self.log = RateLimitedLog(_LOGGER)  # what any client can cause: a line a minute per kind

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
            self._server = await asyncio.start_server(self._on_client, address[0], address[1], limit=MAX_HEADER_BYTES)
            port = self._server.sockets[0].getsockname()[1]
            self.bound_uri = f"tcp://{address[0]}:{port}"
        else:
            path = Path(address)
            if path.is_socket():  # left over from an earlier run
                path.unlink()
            self._server = await asyncio.start_unix_server(self._on_client, address, limit=MAX_HEADER_BYTES)

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
        synth = self.live.current.synth
        if self._table is None or self._table[0] is not synth or refresh:
            self._table = (synth, voice_table(synth))
        return self._table[1]

    def info(self) -> Info:
        return build_info(self.voices(refresh=True))

    def resolve(self, voice: SynthesizeVoice | None, context: dict[str, Any] | None = None) -> Request:
        """Engine, voice and style for a request, on the current runtime.

        An unknown voice name speaks with the default voice (the language and the emotion in
        ``speaker`` still count) and logs a warning: see the module doc for why not ``error``.
        """
        runtime = self.live.current
        table = self.voices()
        try:
            return resolve(runtime.synth, runtime.config.default_engine, table, voice, context)
        except InputError as exc:
            if exc.field != "voice" or voice is None:
                raise
            self.log.warning("voice", "wyoming: %s; speaking with the default voice instead", exc.message)
            fallback = SynthesizeVoice(name=None, language=voice.language, speaker=voice.speaker)
            return resolve(runtime.synth, runtime.config.default_engine, table, fallback, context)

    def clean(self, text: str) -> str:
        text = clean_text(text)
        limit = self.live.config.limits.max_text_chars
        if len(text) > limit:
            raise InputError("text", f"{len(text)} characters; at most {limit}", "oversize")
        return text

    # ---- synthesis (blocking parts run in the pool) ------------------------------------
    async def run_blocking(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def audio_events(self, text: str, req: Request) -> Any:
        """Async iterator of (audio-start, audio-chunk…) events for ``text``; the caller sends audio-stop."""
        eng = req.synth.engine(req.engine)
        await self.run_blocking(eng.load)
        rate = eng.sample_rate
        yield AudioStart(rate=rate, width=2, channels=1).event()
        if not text:
            return
        clauses: Iterator[Any] = req.synth.render(text, req.engine, req.style, req.voice)
        try:
            while True:
                chunk = await self.run_blocking(next, clauses, None)
                if chunk is None:
                    break
                pcm = to_pcm16(chunk.samples).tobytes()
                step = SAMPLES_PER_CHUNK * 2
                for i in range(0, len(pcm), step):
                    yield AudioChunk(rate=chunk.sample_rate, width=2, channels=1, audio=pcm[i : i + step]).event()
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
        self.stream_chars = 0  # text received in this stream, against limits.max_text_chars

    async def run(self) -> None:
        """Events until the client leaves; a broken header ends the connection (see ``wire``)."""
        try:
            while True:
                try:
                    event = await read_event(self.reader)
                except BadEvent as exc:
                    self.server.log.warning("header", "wyoming: closing a connection: %s", exc)
                    await self.write_event(Error(text=str(exc), code="BadEvent").event())
                    break
                if event is None or not await self.handle_event(event):
                    break
        finally:
            self.writer.close()

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
                self.streaming, self.buffer, self.stream_error, self.stream_chars = True, "", False, 0
                self.stream_request = None  # stays None if the voice is unknown (stream_error)
                self.stream_request = self.server.resolve(start.voice, start.context)
            elif SynthesizeChunk.is_type(event.type):
                if self.streaming and not self.stream_error:
                    text = SynthesizeChunk.from_event(event).text
                    self.stream_chars += len(text)
                    limit = self.server.live.config.limits.max_text_chars
                    if self.stream_chars > limit:
                        self.buffer = ""
                        raise InputError(
                            "text", f"the stream passed {limit} characters (limits.max_text_chars)", "oversize"
                        )
                    self.buffer += text
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
            if isinstance(exc, (InputError, EngineUnavailable, OSError, KeyError, TypeError, ValueError)):
                self.server.log.warning(type(exc).__name__, "wyoming: %s failed: %s", event.type, exc)
            else:
                _LOGGER.warning("wyoming: %s failed: %s", event.type, exc, exc_info=True)
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

    parser = argparse.ArgumentParser(
        prog="python -m announcer.wyoming_server", description="Serve announcer's engines as a Wyoming TTS server."
    )
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
    runtime = Runtime.build(cfg, speakers=())  # engines only: this server plays on no speaker
    for name, eng in runtime.synth.engines.items():
        try:
            eng.load()
        except EngineUnavailable as exc:
            _LOGGER.error("engine %s unavailable: %s", name, exc)
    server = WyomingServer(LiveRuntime(runtime), uri)
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
