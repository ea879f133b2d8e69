"""Atomic file writes: a temp file in the same directory, then rename.

A reader sees the old file or the new one, never half of one. ``durable`` adds the
fsyncs (file, then directory) that make the rename survive a power cut: worth it for
the WAV an announcement produced and for settings, not for a cache.

Private by default: the daemon narrows its umask to at least ``PRIVATE_UMASK`` when it
starts (``private_umask``), so what it creates (spool, its WAL and SHM, settings, cache,
WAVs) is 0600 and its directories 0700 whatever umask it was started with; announcement
texts and audio are nobody else's business. A file written here gets ``0666 & ~umask``
with the umask *at the time of the write* (read from ``/proc/self/status``, which does
not change it under other threads), directories made here are 0700.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700


def _read_umask() -> int:
    mask = os.umask(0o022)  # the portable way to read it; done once at import, before threads start
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def current_umask() -> int:
    """The process's umask now (Linux: from /proc, without changing it); elsewhere the one at import."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _UMASK


def private_umask() -> int:
    """Narrow the process's umask to at least ``PRIVATE_UMASK`` (call before threads start); returns it."""
    mask = os.umask(PRIVATE_UMASK) | PRIVATE_UMASK
    os.umask(mask)
    return mask


def make_dirs(path: str | os.PathLike[str]) -> Path:
    """``path`` and its missing parents, each created 0700 (an existing directory is left as it is)."""
    target = Path(path)
    missing = []
    d = target
    while not d.exists() and d != d.parent:
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass
    return target


def atomic_write(
    path: str | os.PathLike[str],
    data: bytes | Callable[[IO[bytes]], None],
    *,
    durable: bool = True,
    prefix: str = ".",
    suffix: str = ".tmp",
) -> int:
    """Write ``data`` (bytes, or a function writing to the open file) to ``path``; return its size."""
    path = Path(path)
    make_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; the file gets the usual mode
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data)
            size = fh.tell()
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        try:
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass  # some file systems cannot fsync a directory; the data itself is safe
    return size


def file_hash(path: str | os.PathLike[str], algorithm: str = "sha256") -> hashlib._Hash:
    """The ``hashlib`` hash of a file's bytes (read in 1 MiB blocks): model files, voices, tarballs."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h


def file_sha256(path: str | os.PathLike[str]) -> str:
    return file_hash(path).hexdigest()
