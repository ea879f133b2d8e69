"""Where announcer keeps its state and cache by default (systemd's ``StateDirectory=`` and
``CacheDirectory=`` when set, else ``/var/lib/announcer`` and ``$XDG_CACHE_HOME/announcer``)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_STATE_DIR = Path(os.environ.get("STATE_DIRECTORY", "/var/lib/announcer")).expanduser()
DEFAULT_CACHE_DIR = Path(
    os.environ.get("CACHE_DIRECTORY") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "announcer")
).expanduser()
