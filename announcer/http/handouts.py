"""Audio handed out to media players: a short-lived, unguessable URL per announcement.

A ``homeassistant`` speaker's player fetches the rendered announcement itself, so the
daemon serves it: ``offer(data, content_type, ttl)`` keeps the bytes in memory under a
random token (256 bits from ``secrets``) and returns the URL (``http.public_url`` +
``/handout/<token>.wav``) and a ``revoke`` function. The token is the credential: the route
needs no bearer token (a media player has none) and no loopback ``Host``; it answers 404
once revoked (the speaker revokes it when the announcement is over) or after ``ttl``
seconds. At most ``MAX_ITEMS`` are kept (the oldest go first).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_ITEMS = 32
EXTENSIONS = {"audio/wav": ".wav", "audio/mpeg": ".mp3"}


class Handouts:
    def __init__(self, base_url: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.base_url = base_url.rstrip("/")
        self._clock = clock
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[bytes, str, float]] = OrderedDict()
        self.fetches = 0

    def offer(self, data: bytes, content_type: str, ttl: float) -> tuple[str, Callable[[], None]]:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._prune()
            self._items[token] = (data, content_type, self._clock() + ttl)
            while len(self._items) > MAX_ITEMS:
                self._items.popitem(last=False)
        url = f"{self.base_url}/handout/{token}{EXTENSIONS.get(content_type, '')}"
        return url, lambda: self.revoke(token)

    def get(self, name: str) -> tuple[bytes, str] | None:
        """The bytes and content type behind ``name`` (``<token>`` or ``<token>.<ext>``), if still offered."""
        token = name.split(".", 1)[0]
        with self._lock:
            item = self._items.get(token)
            if item is None or item[2] < self._clock():
                return None
            self.fetches += 1
            return item[0], item[1]

    def revoke(self, token: str) -> None:
        with self._lock:
            self._items.pop(token, None)

    def __len__(self) -> int:
        with self._lock:
            self._prune()
            return len(self._items)

    def _prune(self) -> None:
        now = self._clock()
        for token in [t for t, (_, _, expires) in self._items.items() if expires < now]:
            del self._items[token]
