"""The Wyoming wire, client side: uri parsing and one-connection-per-request calls (describe, synthesize).

Synchronous: the events are framed with the ``wyoming`` library's blocking ``read_event`` /
``write_event`` over a plain socket, so no event loop is involved. Failures raise
``WyomingError`` (an ``EngineUnavailable``) with the uri in the message. Shared by the
``wyoming`` and ``sambert`` engines, the engine supervisor's readiness probe and the config
(uri checks).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlparse

import numpy as np

from ..core.errors import EngineUnavailable

DEFAULT_SAMPLE_RATE = 22050
ANNOUNCER_PROGRAM = "announcer"
STYLE_CONTEXT_KEY = "announcer_style"  # Synthesize.context key announcer servers read (intensity, speed)


class WyomingError(EngineUnavailable):
    """A Wyoming server could not be reached or answered with an error; the message names the uri."""


def parse_uri(uri: str) -> tuple[str, Any]:
    """``("tcp", (host, port))`` or ``("unix", path)``; ValueError for anything else."""
    parsed = urlparse(uri)
    if parsed.scheme == "tcp":
        try:
            port = parsed.port
        except ValueError:
            port = None
        if not parsed.hostname or port is None:
            raise ValueError(f"{uri!r}: a tcp uri needs a host and a port (tcp://host:10200)")
        return "tcp", (parsed.hostname, port)
    if parsed.scheme == "unix":
        if not parsed.path:
            raise ValueError(f"{uri!r}: a unix uri needs a path (unix:///run/tts.sock)")
        return "unix", parsed.path
    raise ValueError(f"{uri!r}: only tcp://host:port and unix:///path are supported")


def _connect(uri: str, timeout: float) -> socket.socket:
    kind, address = parse_uri(uri)
    if kind == "tcp":
        return socket.create_connection(address, timeout=timeout)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def request(uri: str, event: Any, last: Callable[[Any], bool], timeout: float) -> Iterator[Any]:
    """Send ``event`` on a new connection; yield the answers up to the one ``last`` accepts.

    Raises WyomingError (uri in the message) on connection problems, a server ``error``
    event, a closed connection or when ``timeout`` seconds pass without finishing.
    """
    from wyoming.error import Error
    from wyoming.event import read_event, write_event

    deadline = time.monotonic() + timeout
    try:
        sock = _connect(uri, timeout)
    except OSError as exc:
        raise WyomingError(f"wyoming server {uri} is unreachable: {exc.strerror or exc}") from None
    # the ignores: wyoming annotates its stream BinaryIO; any binary file object (this BufferedRWPair) works
    with sock, sock.makefile("rwb") as stream:
        try:
            write_event(event, stream)  # type: ignore[arg-type]
            while True:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                answer = read_event(stream)  # type: ignore[arg-type]
                if answer is None:
                    raise WyomingError(
                        f"wyoming server {uri} closed the connection before answering {event.type!r} completely"
                    )
                if Error.is_type(answer.type):
                    err = Error.from_event(answer)
                    raise WyomingError(f"wyoming server {uri}: {err.text}" + (f" ({err.code})" if err.code else ""))
                yield answer
                if last(answer):
                    return
        except TimeoutError:
            raise WyomingError(f"wyoming server {uri} did not answer {event.type!r} within {timeout:g} s") from None
        except OSError as exc:
            raise WyomingError(f"wyoming server {uri}: connection failed: {exc.strerror or exc}") from None


def fetch_info(uri: str, timeout: float) -> Any:
    from wyoming.info import Describe, Info

    for answer in request(uri, Describe().event(), lambda e: Info.is_type(e.type), timeout):
        if Info.is_type(answer.type):
            return Info.from_event(answer)
    raise WyomingError(f"wyoming server {uri} sent no info")  # pragma: no cover - request raises first


def synthesize(
    uri: str,
    text: str,
    timeout: float,
    voice: str | None = None,
    speaker: str | None = None,
    context: dict[str, Any] | None = None,
) -> tuple[np.ndarray, int]:
    """One ``synthesize`` round trip: mono float32 samples and the rate of the server's audio-start."""
    from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
    from wyoming.tts import Synthesize, SynthesizeVoice

    wanted = SynthesizeVoice(name=voice, speaker=speaker) if voice else None
    event = Synthesize(text=text, voice=wanted, context=context).event()
    rate: int | None = None
    pcm: list[bytes] = []
    converter: AudioChunkConverter | None = None
    for answer in request(uri, event, lambda e: AudioStop.is_type(e.type), timeout):
        if AudioStart.is_type(answer.type):
            rate = int(AudioStart.from_event(answer).rate)
        elif AudioChunk.is_type(answer.type):
            chunk = AudioChunk.from_event(answer)
            if rate is None:
                rate = int(chunk.rate)
            if converter is None:
                converter = AudioChunkConverter(rate=rate, width=2, channels=1)
            pcm.append(converter.convert(chunk).audio)  # to 16-bit mono at the first rate seen
    samples = np.frombuffer(b"".join(pcm), dtype="<i2").astype(np.float32) / 32768.0
    return samples, rate or DEFAULT_SAMPLE_RATE


# --- the engine ---------------------------------------------------------------------------
