"""Keep a native library's chatter off standard error: LiteRT's one INFO line.

LiteRT's C++ logger (``tflite::logging_internal::MinimalLogger``) writes ``INFO: Created
TensorFlow Lite XNNPACK delegate for CPU.`` to file descriptor 2 when the first interpreter of
a process applies its default XNNPACK delegate. Neither ``TF_CPP_MIN_LOG_LEVEL`` nor any
Python API silences it, and turning XNNPACK off makes synthesis twice as slow. So fd 2 points
at a temporary file while interpreters are created (a few milliseconds), and everything
written there except the lines in ``DROP`` is written back to fd 2 unchanged afterwards:
a warning from LiteRT, or a log line another thread wrote meanwhile, is delayed, never lost.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

DROP = frozenset({b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."})
_LOCK = threading.Lock()  # fd 2 is per process: one redirection at a time


@contextlib.contextmanager
def filtered() -> Iterator[None]:
    """Run the block with fd 2 captured; pass on what it wrote but the ``DROP`` lines."""
    with _LOCK, tempfile.TemporaryFile() as tmp:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [line for line in tmp.read().splitlines(keepends=True) if line.rstrip(b"\r\n") not in DROP]
            if kept:
                os.write(2, b"".join(kept))
