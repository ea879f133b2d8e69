"""``espeak`` engine: libespeak-ng through ctypes, for other languages and as a fallback.

The library and its data come from the PyPI package ``espeakng-loader`` (no system
package needed). espeak-ng is GPL-3.0, so it lives in the optional install extra
``announcer[espeak]`` and is never imported by default: importing this module is cheap,
the library is loaded in ``_load``.

libespeak-ng keeps process-global state (one voice, one set of parameters, one synth
callback), so every call into it holds the module-level ``_LIB_LOCK`` and the library is
initialised once per process, whatever the number of engine instances.

Emotions are prosody presets (rate, pitch, pitch range, volume) scaled by the style's
intensity; the style's speed multiplies the rate.
"""

from __future__ import annotations

import ctypes
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..core.emotions import EMOTIONS
from ..core.errors import EngineUnavailable
from .base import Engine, Style

_LOGGER = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'announcer[espeak]' (installs espeakng-loader, which ships libespeak-ng and its data)"

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_RATE_MIN, _RATE_MAX = 80, 450
_DEFAULT_SAMPLE_RATE = 22050

# Shown when the library cannot be asked (not installed): the configured voice comes first anyway.
COMMON_VOICES: tuple[str, ...] = ("en-us", "en-gb", "cmn", "yue", "ja", "ko", "de", "fr", "es")

MAX_CLAUSE_CHARS = 200


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["espeak"]
    voice: str = "en-us"
    rate_wpm: int = Field(175, ge=_RATE_MIN, le=_RATE_MAX)
    pitch: int = Field(50, ge=0, le=100)


# --- emotion presets ------------------------------------------------------------------


@dataclass(frozen=True)
class Prosody:
    """Offsets from neutral at intensity 1: rate factor, and pitch / range / volume points."""

    rate: float = 1.0  # multiplies words per minute
    pitch: float = 0.0  # 0..100 scale, neutral = configured pitch
    range: float = 0.0  # 0..100 scale, neutral = 50
    volume: float = 0.0  # 0..200 scale, neutral = 100


PRESETS: dict[str, Prosody] = {
    "neutral": Prosody(),
    "happy": Prosody(rate=1.12, pitch=12, range=15, volume=6),
    "sad": Prosody(rate=0.80, pitch=-12, range=-20, volume=-30),
    "angry": Prosody(rate=1.15, pitch=3, range=25, volume=18),
    "fearful": Prosody(rate=1.18, pitch=15, range=-20, volume=-5),
    "surprised": Prosody(rate=1.05, pitch=18, range=30, volume=4),
}
assert set(PRESETS) == set(EMOTIONS)


def _clamp(value: float, low: int, high: int) -> int:
    return int(round(min(high, max(low, value))))


def espeak_parameters(style: Style, rate_wpm: int, pitch: int) -> dict[str, int]:
    """espeak parameter values for ``style`` (intensity 0 = neutral, 2 = double offsets)."""
    preset = PRESETS.get(style.emotion, PRESETS["neutral"])
    k = min(2.0, max(0.0, float(style.intensity)))
    rate_factor = max(0.1, 1.0 + (preset.rate - 1.0) * k) * float(style.speed)
    return {
        "rate": _clamp(rate_wpm * rate_factor, _RATE_MIN, _RATE_MAX),
        "pitch": _clamp(pitch + preset.pitch * k, 0, 100),
        "range": _clamp(50 + preset.range * k, 0, 100),
        "volume": _clamp(100 + preset.volume * k, 0, 200),
    }


# --- clauses --------------------------------------------------------------------------

# A clause ends after CJK punctuation, after ``!?;:,`` and after a full stop / ellipsis
# followed by space or the end (so "3.14" and "e.g.x" stay whole).
_CLAUSE_END = re.compile(r"(?<=[。！？；：，、…!?;,])|(?<=[.:])(?=\s|$)")
_SENTENCE_END = ("。", "！", "？", ".", "!", "?", "…")
_SEMI_END = ("；", "：", ";", ":")
_COMMA_END = ("，", "、", ",")


def split_clauses(text: str, max_chars: int = MAX_CLAUSE_CHARS) -> list[str]:
    text = re.sub(r"\s+", " ", text).strip()
    out: list[str] = []
    for piece in _CLAUSE_END.split(text):
        piece = piece.strip()
        if not piece:
            continue
        if not re.search(r"\w", piece) and out:
            out[-1] += piece  # stray punctuation ("!!", "?!") belongs to the clause before
            continue
        while len(piece) > max_chars:
            cut = piece.rfind(" ", 0, max_chars + 1)
            if cut <= 0:
                cut = max_chars
            out.append(piece[:cut].strip())
            piece = piece[cut:].strip()
        if piece:
            out.append(piece)
    return [c for c in out if re.search(r"\w", c)]


# --- the library ----------------------------------------------------------------------

_LIB_LOCK = threading.RLock()
_CALLBACK_TYPE: Any = None


class _Library:
    """The initialised libespeak-ng (one per process)."""

    def __init__(self, lib: ctypes.CDLL, sample_rate: int, version: str) -> None:
        self.lib = lib
        self.sample_rate = sample_rate
        self.version = version
        self.chunks: list[np.ndarray] = []
        self.voice: str | None = None
        self.callback = _CALLBACK_TYPE(self._on_audio)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self.callback)
        self.voice_names = self._list_voices()

    def _on_audio(self, wav: Any, count: int, _events: Any) -> int:
        if wav and count > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    def _list_voices(self) -> tuple[str, ...]:
        """Primary language code of each installed voice (names ``espeak_SetVoiceByName`` accepts)."""

        class Voice(ctypes.Structure):
            _fields_ = [
                ("name", ctypes.c_char_p),
                ("languages", ctypes.c_void_p),
                ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte),
                ("age", ctypes.c_ubyte),
                ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte),
                ("score", ctypes.c_int),
                ("spare", ctypes.c_void_p),
            ]

        self.lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(Voice))
        self.lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        names: list[str] = []
        try:
            voices = self.lib.espeak_ListVoices(None)
            i = 0
            while voices and voices[i]:
                addr = voices[i].contents.languages
                # languages: (priority byte, NUL-terminated code)*, then a zero byte
                if addr and ctypes.c_ubyte.from_address(addr).value:
                    code = ctypes.string_at(addr + 1).decode("utf-8", "replace")
                    if code and code not in names:
                        names.append(code)
                i += 1
        except Exception:  # listing is a convenience; synthesis does not depend on it
            _LOGGER.warning("could not list espeak-ng voices", exc_info=True)
        return tuple(names)

    def synthesize(self, text: str, voice: str, params: dict[str, int]) -> np.ndarray:
        with _LIB_LOCK:
            if voice != self.voice:
                if self.lib.espeak_SetVoiceByName(voice.encode("utf-8")) != 0:
                    self.voice = None
                    raise ValueError(f"espeak-ng has no voice {voice!r}")
                self.voice = voice
            for param, value in (
                (_RATE, params["rate"]),
                (_PITCH, params["pitch"]),
                (_RANGE, params["range"]),
                (_VOLUME, params["volume"]),
            ):
                self.lib.espeak_SetParameter(param, value, 0)
            data = text.encode("utf-8")
            self.chunks = []
            try:
                err = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
                self.lib.espeak_Synchronize()
                if err != 0:
                    raise RuntimeError(f"espeak_Synth failed with error {err}")
                pcm = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
            finally:
                self.chunks = []
        return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


_LIBRARY: _Library | None = None


def _library() -> _Library:
    """Load and initialise libespeak-ng once per process; EngineUnavailable if it is missing."""
    global _LIBRARY, _CALLBACK_TYPE
    with _LIB_LOCK:
        if _LIBRARY is not None:
            return _LIBRARY
        try:
            import espeakng_loader
        except ImportError:
            raise EngineUnavailable(f"espeak: espeakng-loader is not installed; {INSTALL_HINT}") from None
        try:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data_path = espeakng_loader.get_data_path()
        except (OSError, RuntimeError) as exc:
            raise EngineUnavailable(f"espeak: cannot load libespeak-ng ({exc}); {INSTALL_HINT}") from None
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        _CALLBACK_TYPE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode("utf-8"), 0)
        if rate <= 0:
            raise EngineUnavailable(
                f"espeak: libespeak-ng failed to initialise with data at {data_path}; {INSTALL_HINT}"
            )
        version = (lib.espeak_Info(None) or b"?").decode("ascii", "replace")
        _LIBRARY = _Library(lib, rate, version)
        _LOGGER.info("espeak-ng %s loaded (%d Hz, %d voices)", version, rate, len(_LIBRARY.voice_names))
        return _LIBRARY


def _installed_voices() -> tuple[str, ...] | None:
    try:
        return _library().voice_names
    except EngineUnavailable:
        return None


# --- the engine -----------------------------------------------------------------------


class EspeakEngine(Engine):
    type_name = "espeak"

    def _load(self) -> None:
        lib = _library()
        if self.config.voice not in lib.voice_names:
            # SetVoiceByName also accepts names, identifiers and "+variant" suffixes: try it.
            try:
                lib.synthesize(
                    "a", self.config.voice, espeak_parameters(Style(), self.config.rate_wpm, self.config.pitch)
                )
            except ValueError:
                raise EngineUnavailable(
                    f"espeak: engine {self.name}: unknown voice {self.config.voice!r} "
                    f"(installed: {', '.join(lib.voice_names)})"
                ) from None

    @property
    def voices(self) -> tuple[str, ...]:
        # Asking the library is cheap (it initialises once); without it show common voices.
        installed = _installed_voices()
        rest = installed if installed is not None else COMMON_VOICES
        return (self.config.voice,) + tuple(v for v in rest if v != self.config.voice)

    @property
    def languages(self) -> tuple[str, ...]:
        return self.voices

    @property
    def emotions(self) -> tuple[str, ...]:
        return EMOTIONS

    @property
    def emotion_controls(self) -> tuple[str, ...]:
        return ("rate", "pitch", "pitch-range", "level")

    @property
    def sample_rate(self) -> int:
        return _LIBRARY.sample_rate if _LIBRARY is not None else _DEFAULT_SAMPLE_RATE

    @property
    def fingerprint(self) -> str:
        try:
            from importlib.metadata import version

            lib_version = version("espeakng-loader")
        except Exception:
            lib_version = "?"
        return f"{self.type_name}:{lib_version}:{self.config!r}"

    def clauses(self, text: str) -> list[str]:
        return split_clauses(text)

    def synthesize_clause(self, clause: str, style: Style, voice: str | None = None) -> np.ndarray:
        self.load()
        params = espeak_parameters(style, self.config.rate_wpm, self.config.pitch)
        return _library().synthesize(clause, voice or self.config.voice, params)

    def pause_after(self, clause: str, style: Style) -> float:
        end = clause.rstrip()[-1:] if clause.strip() else ""
        if end in _SENTENCE_END:
            base = 0.30
        elif end in _SEMI_END:
            base = 0.18
        elif end in _COMMA_END:
            base = 0.08
        else:
            base = 0.0
        return base / max(0.25, float(style.speed))


ENGINE = EspeakEngine
