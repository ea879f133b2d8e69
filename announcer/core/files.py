"""Atomic file writes: a temp file in the same directory, then rename.

A reader sees the old file or the new one, never half of one. ``durable`` adds the
fsyncs (file, then directory) that make the rename survive a power cut: worth it for
the WAV an announcement produced and for settings, not for a cache.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def _read_umask() -> int:
    mask = os.umask(0o022)  # the only way to read it; done once at import, before threads start
    os.umask(mask)
    return mask


_UMASK = _read_umask()


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; the file gets the usual mode
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
