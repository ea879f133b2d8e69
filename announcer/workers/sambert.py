"""Sambert-HiFiGAN worker: a standalone Wyoming TTS server for ModelScope's Mandarin model.

Runs in its own environment (Python 3.8-3.10, torch, modelscope, the real ``ttsfrd`` and
``kantts`` wheels: see docs/sambert.md) and imports nothing else from ``announcer``::

    python -m announcer.workers.sambert --model-dir DIR --uri tcp://127.0.0.1:10201
    python announcer/workers/sambert.py --model-dir DIR      # the file alone works too

It loads the local model directory once, at start-up. Everything that can be wrong with
the environment (Python version, modelscope, ttsfrd/kantts, model files, a writable
directory for ``resource.zip``) is reported then, as one line on stderr with exit code 2,
never at the first request. ``--check`` loads everything and exits 0.

Voices: each model voice (``zhitian_emo`` ...) under its own name, plus
``<voice>-<emotion>`` for announcer's six emotions (``zhitian_emo-happy``). A request
may instead give ``emotion``/``intensity`` in the Synthesize event's ``context``.

Emotion (``--emotion-mode``):

* ``symbols``: the text front-end (ttsfrd) labels every symbol with an emotion tag
  (``emotion_neutral``); a hook at the front-end output boundary replaces each tag with
  the requested one before the acoustic model reads it. Tags are categorical, so
  intensity < 0.5 speaks neutral and anything else the full emotion.
* ``ssml``: the text is wrapped as ``<speak><emotion category="happy"
  intensity="1.00">...</emotion></speak>``, as Alibaba's documentation shows;
  intensity is clamped to 0.01..2.0 and 0 (or neutral) sends plain text.
* ``auto`` (default): ``symbols`` when the hook could be installed, else ``ssml``.

Neither mechanism could be verified against the real model here (it cannot run in this
project's test environment); docs/sambert.md says how to verify them with real files.

Text is synthesized sentence by sentence (split after 。！？；!?;), one AudioChunk per
sentence, so a client can play the first sentence while the next is synthesized.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import io
import json
import logging
import os
import re
import sys
import tempfile
import threading
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

_LOGGER = logging.getLogger("announcer.workers.sambert")

EXIT_SETUP = 2
PYTHON_MIN, PYTHON_MAX = (3, 8), (3, 10)
DEFAULT_URI = "tcp://127.0.0.1:10201"
MODEL_ID = "damo/speech_sambert-hifigan_tts_zh-cn_16k"
MODEL_URL = "https://modelscope.cn/models/damo/speech_sambert-hifigan_tts_zh-cn_16k"
DOCS = "docs/sambert.md"
DEFAULT_SAMPLE_RATE = 16000

# announcer's emotions -> Sambert's emotion categories
EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "surprised")
SAMBERT_EMOTIONS: dict[str, str] = {
    "neutral": "neutral",
    "happy": "happy",
    "sad": "sad",
    "angry": "angry",
    "fearful": "fear",
    "surprised": "surprise",
}
EMOTION_ALIASES: dict[str, str] = {"fear": "fearful", "surprise": "surprised", "calm": "neutral"}
MODES: tuple[str, ...] = ("auto", "symbols", "ssml")
SYMBOLS_NEUTRAL_BELOW = 0.5  # symbols mode: intensity below this speaks neutral
SSML_MIN_INTENSITY, SSML_MAX_INTENSITY = 0.01, 2.0
STYLE_CONTEXT_KEY = "announcer_style"  # Synthesize.context key announcer's engines fill (intensity, speed)

_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])")
_EMOTION_TAG = re.compile(r"emotion_[A-Za-z]+")
_SPOKEN = re.compile(r"[^\s\W_]", re.UNICODE)


class SetupError(Exception):
    """The worker cannot run here; the message (one line) says what to fix."""


# ------------------------------------------------------------------------- pure helpers
def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (after 。！？；!?;), punctuation-only pieces joined to the one before."""
    out: list[str] = []
    for piece in _SENTENCE_END.split(" ".join(text.split())):
        piece = piece.strip()
        if not piece:
            continue
        if not _SPOKEN.search(piece):
            if out:
                out[-1] += piece
            continue
        out.append(piece)
    return out


def resolve_emotion(name: str | None) -> str | None:
    """announcer's emotion name for ``name`` (Sambert's ``fear``/``surprise`` accepted), None if unknown."""
    if not name:
        return "neutral"
    low = name.strip().lower()
    if low in EMOTIONS:
        return low
    return EMOTION_ALIASES.get(low)


def parse_voice(name: str | None, voices: list[str], default_voice: str) -> tuple[str, str | None]:
    """``zhitian_emo-happy`` -> (``zhitian_emo``, ``happy``); ``zhitian_emo`` -> (.., None).

    Raises ValueError naming the allowed voices.
    """
    if not name:
        return default_voice, None
    if name in voices:
        return name, None
    base, sep, suffix = name.rpartition("-")
    if sep and base in voices:
        emotion = resolve_emotion(suffix)
        if emotion is not None:
            return base, emotion
    raise ValueError(
        f"unknown voice {name!r} (allowed: {', '.join(voices)}, or <voice>-<emotion> "
        f"with emotion one of {', '.join(EMOTIONS)})"
    )


def clamp_intensity(value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return 1.0
    return max(0.0, min(2.0, x))


def symbol_emotion(emotion: str, intensity: float) -> str:
    """The Sambert category written into every symbol's emotion tag (symbols mode)."""
    if intensity < SYMBOLS_NEUTRAL_BELOW:
        return "neutral"
    return SAMBERT_EMOTIONS[emotion]


def ssml_text(text: str, emotion: str, intensity: float) -> str:
    """Alibaba's SSML-like emotion markup around ``text`` (ssml mode); plain text for neutral."""
    category = SAMBERT_EMOTIONS[emotion]
    if category == "neutral" or intensity <= 0:
        return text
    level = max(SSML_MIN_INTENSITY, min(SSML_MAX_INTENSITY, intensity))
    body = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'<speak><emotion category="{category}" intensity="{level:.2f}">{body}</emotion></speak>'


def edit_symbols(symbols: str, category: str) -> tuple[str, int]:
    """Replace every ``emotion_*`` tag of a front-end symbol sequence; returns (text, tags replaced)."""
    return _EMOTION_TAG.subn("emotion_" + category, symbols)


# ------------------------------------------------------------------------ start-up checks
def check_python(version: tuple[int, ...]) -> None:
    if not (PYTHON_MIN <= tuple(version[:2]) <= PYTHON_MAX):
        have = ".".join(str(v) for v in version[:3])
        raise SetupError(
            f"Python {have} cannot run Sambert's model code (kantts/ttsfrd wheels need Python "
            f"{PYTHON_MIN[0]}.{PYTHON_MIN[1]}-{PYTHON_MAX[0]}.{PYTHON_MAX[1]}): create the worker's "
            f"virtualenv with python3.10 as {DOCS} shows"
        )


@dataclass(frozen=True)
class ModelInfo:
    directory: str
    sample_rate: int
    voices: list[str]


def _need(path: str, what: str) -> str:
    if not os.path.exists(path):
        raise SetupError(f"model file missing: {path} ({what}); download {MODEL_ID} as {DOCS} shows")
    return path


def _checkpoints(directory: str) -> list[str]:
    _need(directory, "checkpoint directory")
    found = sorted(n for n in os.listdir(directory) if n.startswith("checkpoint") and n.endswith(".pth"))
    if not found:
        raise SetupError(
            f"model file missing: {directory}/checkpoint_*.pth (no checkpoint); download {MODEL_ID} as {DOCS} shows"
        )
    return found


def check_model_dir(model_dir: str) -> ModelInfo:
    """The files SambertHifigan and its Voice objects open, each named when missing."""
    if not os.path.isdir(model_dir):
        raise SetupError(f"model directory missing: {model_dir}; download {MODEL_ID} as {DOCS} shows")
    config_path = _need(os.path.join(model_dir, "configuration.json"), "model configuration")
    _need(os.path.join(model_dir, "resource.zip"), "text front-end resources")
    voices_json = _need(os.path.join(model_dir, "voices", "voices.json"), "voice list")
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
        with open(voices_json, encoding="utf-8") as f:
            voices = list(json.load(f)["voices"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SetupError(f"cannot read the model description: {exc}") from None
    if not voices:
        raise SetupError(f"{voices_json}: no voices listed")
    for voice in voices:
        vdir = os.path.join(model_dir, "voices", voice)
        _need(os.path.join(vdir, "am", "config.yaml"), f"acoustic model config of {voice}")
        _need(os.path.join(vdir, "voc", "config.yaml"), f"vocoder config of {voice}")
        _checkpoints(os.path.join(vdir, "am", "ckpt"))
        _checkpoints(os.path.join(vdir, "voc", "ckpt"))
    model = config.get("model") if isinstance(config, dict) else None
    rate = model.get("sample_rate", DEFAULT_SAMPLE_RATE) if isinstance(model, dict) else DEFAULT_SAMPLE_RATE
    return ModelInfo(model_dir, int(rate), voices)


def check_packages() -> str:
    """Import modelscope, ttsfrd and kantts; returns modelscope's version."""
    where = sys.executable
    try:
        modelscope = importlib.import_module("modelscope")
        importlib.import_module("modelscope.pipelines")
    except ImportError as exc:
        raise SetupError(
            f"modelscope is not installed for {where} ({exc}): pip install -r requirements-sambert.txt "
            f"in the worker's virtualenv ({DOCS})"
        ) from None
    try:
        ttsfrd = importlib.import_module("ttsfrd")
    except ImportError as exc:
        raise SetupError(
            f"ttsfrd is not installed for {where} ({exc}): install the ttsfrd wheel from ModelScope's "
            f"release page; the PyPI package named ttsfrd is an empty placeholder ({DOCS})"
        ) from None
    if not hasattr(ttsfrd, "TtsFrontendEngine"):
        raise SetupError(
            f"ttsfrd at {getattr(ttsfrd, '__file__', '?')} has no TtsFrontendEngine: that is the PyPI "
            f"placeholder; pip uninstall ttsfrd and install the wheel from ModelScope's release page ({DOCS})"
        )
    try:
        importlib.import_module("kantts")
    except ImportError as exc:
        raise SetupError(
            f"kantts is not installed for {where} ({exc}): install KAN-TTS from ModelScope's release "
            f"page; the PyPI package named kantts is an empty placeholder ({DOCS})"
        ) from None
    try:
        importlib.import_module("kantts.models")
    except ImportError as exc:
        missing = getattr(exc, "name", "") or ""
        if missing.startswith("kantts"):
            raise SetupError(
                f"kantts has no kantts.models: that is the PyPI placeholder; pip uninstall kantts and "
                f"install KAN-TTS from ModelScope's release page ({DOCS})"
            ) from None
        raise SetupError(
            f"kantts cannot be imported: {exc} (pip install -r requirements-sambert.txt; {DOCS})"
        ) from None
    return str(getattr(modelscope, "__version__", "unknown"))


def _writable(directory: str) -> bool:
    """True if files can be created in ``directory`` and its extracted ``resource/`` overwritten."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".announcer-probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError:
        return False
    resource = os.path.join(directory, "resource")
    for root, dirs, files in os.walk(resource):
        for name in dirs + files:
            if not os.access(os.path.join(root, name), os.W_OK):
                return False
        if not os.access(root, os.W_OK):
            return False
    return True


def default_work_dir() -> str:
    base = os.environ.get("CACHE_DIRECTORY") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "announcer"
    )
    return os.path.join(base, "sambert-model")


def writable_model_dir(model_dir: str, work_dir: str | None, writable: Any = None) -> str:
    """The directory to load from: ``model_dir`` if writable, else a mirror of symlinks in ``work_dir``.

    SambertHifigan unzips ``resource.zip`` into its model directory at every start, so a
    read-only install (a package, a mounted volume) gets a mirror: every entry of the
    model directory symlinked, except ``resource/``, which is extracted there instead.
    """
    writable = writable or _writable  # a test may pass its own predicate (root can write anywhere)
    model_dir = os.path.abspath(model_dir)
    if writable(model_dir):
        return model_dir
    mirror = os.path.abspath(work_dir or default_work_dir())
    try:
        os.makedirs(mirror, exist_ok=True)
        for name in os.listdir(model_dir):
            if name == "resource":
                continue
            link = os.path.join(mirror, name)
            target = os.path.join(model_dir, name)
            if os.path.islink(link):
                if os.readlink(link) == target:
                    continue
                os.unlink(link)
            elif os.path.exists(link):
                continue
            os.symlink(target, link)
    except OSError as exc:
        raise SetupError(
            f"{model_dir} is read-only and the work directory {mirror} cannot be prepared "
            f"({exc.strerror or exc}); resource.zip is unzipped at every start: give --work-dir "
            f"a writable directory"
        ) from None
    if not writable(mirror):
        raise SetupError(
            f"{model_dir} is read-only and the work directory {mirror} is not writable either; "
            f"resource.zip is unzipped at every start: give --work-dir a writable directory"
        )
    _LOGGER.info("%s is read-only: loading through %s", model_dir, mirror)
    return mirror


# ------------------------------------------------------------------------- the model
class FrontendHook:
    """Stands between SambertHifigan and its ttsfrd front-end: rewrites the emotion tags.

    ``SambertHifigan.forward`` calls ``gen_tacotron_symbols(text)`` and hands each line's
    symbols to the acoustic model; this proxy edits that output. Everything else is
    passed to the real front-end.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.category: str | None = None  # set (under the synth lock) before each call
        self._warned = False

    def gen_tacotron_symbols(self, text: str) -> str:
        symbols = self._inner.gen_tacotron_symbols(text)
        if self.category is None:
            return symbols
        edited, count = edit_symbols(symbols, self.category)
        if count == 0 and not self._warned:
            self._warned = True
            _LOGGER.warning(
                "the front-end output carries no emotion_* tags: emotion is not applied (try --emotion-mode ssml)"
            )
        return edited

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def install_frontend_hook(pipe: Any) -> FrontendHook | None:
    """Wrap the front-end held by the pipeline's model (``SambertHifigan.__frontend``); None if not found."""
    model = getattr(pipe, "model", None)
    if model is None:
        return None
    try:
        attributes = list(vars(model).items())
    except TypeError:
        return None
    for attr, value in attributes:
        if hasattr(value, "gen_tacotron_symbols") and not isinstance(value, FrontendHook):
            hook = FrontendHook(value)
            setattr(model, attr, hook)
            return hook
    return None


def load_pipeline(model_dir: str) -> Any:
    from modelscope.pipelines import pipeline  # heavy: torch, kantts, ttsfrd
    from modelscope.utils.constant import Tasks

    return pipeline(Tasks.text_to_speech, model=model_dir)


@dataclass(frozen=True)
class Pcm:
    audio: bytes  # 16-bit little-endian mono
    rate: int


def wav_to_pcm(data: bytes) -> Pcm:
    with wave.open(io.BytesIO(data), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"unexpected model output: {w.getnchannels()} channel(s), {8 * w.getsampwidth()}-bit")
        return Pcm(w.readframes(w.getnframes()), w.getframerate())


class SambertSynth:
    """The loaded pipeline: one sentence at a time, one caller at a time."""

    def __init__(self, pipe: Any, info: ModelInfo, mode: str) -> None:
        self.pipe = pipe
        self.info = info
        self.hook = install_frontend_hook(pipe) if mode in ("auto", "symbols") else None
        if mode == "symbols" and self.hook is None:
            raise SetupError(
                "--emotion-mode symbols: the model has no ttsfrd front-end to hook "
                "(modelscope version changed?); use --emotion-mode ssml"
            )
        self.mode = "symbols" if self.hook is not None else "ssml"
        self._lock = threading.Lock()

    @property
    def voices(self) -> list[str]:
        return self.info.voices

    def sentence(self, text: str, voice: str, emotion: str, intensity: float) -> Pcm:
        with self._lock:
            if self.hook is not None:
                self.hook.category = symbol_emotion(emotion, intensity)
                model_input = text
            else:
                model_input = ssml_text(text, emotion, intensity)
            try:
                result = self.pipe(input=model_input, voice=voice)
            finally:
                if self.hook is not None:
                    self.hook.category = None
        return wav_to_pcm(result["output_wav"])

    def synthesize(self, text: str, voice: str, emotion: str, intensity: float) -> Iterator[Pcm]:
        for sentence in split_sentences(text):
            yield self.sentence(sentence, voice, emotion, intensity)


# ----------------------------------------------------------------------- Wyoming side
def describe_info(synth: SambertSynth, version: str) -> Any:
    from wyoming.info import Attribution, Info, TtsProgram, TtsVoice

    attribution = Attribution(name="Alibaba DAMO Academy (ModelScope)", url=MODEL_URL)
    voices = []
    for voice in synth.voices:
        names = [voice] + [f"{voice}-{e}" for e in EMOTIONS]
        for name in names:
            voices.append(
                TtsVoice(
                    name=name,
                    attribution=attribution,
                    installed=True,
                    version=None,
                    description=f"Sambert {name} (emotion mode {synth.mode})",
                    languages=["zh", "zh-CN"],
                )
            )
    program = TtsProgram(
        name="sambert",
        attribution=attribution,
        installed=True,
        version=version,
        description=f"{MODEL_ID} ({synth.info.sample_rate} Hz)",
        voices=voices,
    )
    return Info(tts=[program])


def request_style(
    voice_name: str | None, context: dict[str, Any] | None, synth: SambertSynth, default_voice: str
) -> tuple[str, str, float]:
    """(voice, emotion, intensity) of one Synthesize event; ValueError for a bad voice or emotion."""
    voice, emotion = parse_voice(voice_name, synth.voices, default_voice)
    context = dict(context or {})
    style = context.get(STYLE_CONTEXT_KEY)
    if isinstance(style, dict):  # announcer's wyoming/sambert engines send {"announcer_style": {...}}
        context.update(style)
    if emotion is None:
        emotion = resolve_emotion(context.get("emotion"))
        if emotion is None:
            raise ValueError(f"unknown emotion {context.get('emotion')!r} (allowed: {', '.join(EMOTIONS)})")
    return voice, emotion, clamp_intensity(context.get("intensity", 1.0))


class _Handler:
    """Factory of per-connection handlers (built lazily: wyoming is imported in main)."""

    def __init__(self, synth: SambertSynth, version: str, default_voice: str) -> None:
        self.synth = synth
        self.version = version
        self.default_voice = default_voice

    def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Any:
        from wyoming.audio import AudioChunk, AudioStart, AudioStop
        from wyoming.error import Error
        from wyoming.info import Describe
        from wyoming.server import AsyncEventHandler
        from wyoming.tts import Synthesize

        factory = self

        class Handler(AsyncEventHandler):
            async def handle_event(self, event: Any) -> bool:
                if Describe.is_type(event.type):
                    await self.write_event(describe_info(factory.synth, factory.version).event())
                    return True
                if not Synthesize.is_type(event.type):
                    return True
                request = Synthesize.from_event(event)
                try:
                    voice, emotion, intensity = request_style(
                        request.voice.name if request.voice else None,
                        request.context,
                        factory.synth,
                        factory.default_voice,
                    )
                except ValueError as exc:
                    await self.write_event(Error(text=str(exc), code="bad-request").event())
                    return True
                _LOGGER.info(
                    "synthesize %d chars, voice %s, emotion %s %.2f", len(request.text), voice, emotion, intensity
                )
                loop = asyncio.get_running_loop()
                sentences = split_sentences(request.text)
                started = False
                try:
                    for sentence in sentences:
                        pcm = await loop.run_in_executor(
                            None, partial(factory.synth.sentence, sentence, voice, emotion, intensity)
                        )
                        if not started:
                            await self.write_event(AudioStart(rate=pcm.rate, width=2, channels=1).event())
                            started = True
                        await self.write_event(AudioChunk(rate=pcm.rate, width=2, channels=1, audio=pcm.audio).event())
                except Exception as exc:  # reported to the client; the worker keeps serving
                    _LOGGER.exception("synthesis failed")
                    await self.write_event(
                        Error(text=f"synthesis failed: {type(exc).__name__}: {exc}", code="synthesis-failed").event()
                    )
                    return True
                if not started:
                    await self.write_event(AudioStart(rate=factory.synth.info.sample_rate, width=2, channels=1).event())
                await self.write_event(AudioStop().event())
                return True

        return Handler(reader, writer)


async def serve(uri: str, handler: _Handler) -> None:
    from wyoming.server import AsyncServer

    server = AsyncServer.from_uri(uri)
    _LOGGER.info(
        "ready: listening on %s (voices %s; emotion mode %s)", uri, ", ".join(handler.synth.voices), handler.synth.mode
    )
    await server.run(handler)


# ---------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="announcer.workers.sambert",
        description="Wyoming TTS server for ModelScope Sambert-HiFiGAN (Mandarin, emotions).",
    )
    p.add_argument("--model-dir", required=True, help=f"local copy of {MODEL_ID}")
    p.add_argument("--uri", default=DEFAULT_URI, help=f"where to listen (default {DEFAULT_URI})")
    p.add_argument("--voice", help="default voice (default: the first in voices.json)")
    p.add_argument(
        "--emotion-mode",
        choices=MODES,
        default="auto",
        help="symbols: edit the front-end's emotion tags; ssml: emotion markup; auto: symbols if possible",
    )
    p.add_argument(
        "--work-dir",
        help="writable directory used when --model-dir is read-only "
        "(default: $CACHE_DIRECTORY or ~/.cache/announcer, /sambert-model)",
    )
    p.add_argument("--check", action="store_true", help="check the environment, load the model, exit")
    p.add_argument("--debug", action="store_true", help="debug logging")
    return p


def start(args: argparse.Namespace) -> tuple[SambertSynth, str]:
    """Every start-up check, then the model; raises SetupError (one line) for what must be fixed."""
    check_python(sys.version_info)
    info = check_model_dir(os.path.abspath(args.model_dir))
    if args.voice is not None and args.voice not in info.voices:
        raise SetupError(f"--voice {args.voice!r} is not in the model (have: {', '.join(info.voices)})")
    version = check_packages()
    try:
        importlib.import_module("wyoming.server")
    except ImportError as exc:
        raise SetupError(
            f"wyoming is not installed for {sys.executable} ({exc}): pip install -r requirements-sambert.txt ({DOCS})"
        ) from None
    directory = writable_model_dir(info.directory, args.work_dir)
    try:
        pipe = load_pipeline(directory)
    except SetupError:
        raise
    except Exception as exc:  # torch missing, corrupt checkpoints, ...: one line, exit 2
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise SetupError(f"cannot load the Sambert model from {directory}: {message}") from None
    synth = SambertSynth(pipe, ModelInfo(directory, info.sample_rate, info.voices), args.emotion_mode)
    return synth, version


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        synth, version = start(args)
    except SetupError as exc:
        print(f"sambert worker: {' '.join(str(exc).split())}", file=sys.stderr, flush=True)
        return EXIT_SETUP
    if args.check:
        print(
            f"sambert worker: ok: modelscope {version}, {len(synth.voices)} voice(s) ({', '.join(synth.voices)}), "
            f"{synth.info.sample_rate} Hz, emotion mode {synth.mode}",
            flush=True,
        )
        return 0
    handler = _Handler(synth, version, args.voice or synth.voices[0])
    try:
        asyncio.run(serve(args.uri, handler))
    except KeyboardInterrupt:
        pass
    except (OSError, ValueError) as exc:
        print(f"sambert worker: cannot listen on {args.uri}: {exc}", file=sys.stderr, flush=True)
        return EXIT_SETUP
    _LOGGER.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
