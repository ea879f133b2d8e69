"""What the HTTP side remembers: recent announcements' events and the WAVs ``/tts`` made.

``RecentAnnouncements`` is an ``EventBus`` listener keeping the events of the last
``max_announcements`` announcements (and at most ``max_events`` events each), for
``GET /announcements/{id}`` and the console's live list. Bounded: the oldest go first.

``AudioStore`` keeps ``/tts`` output as ``<dir>/<id>.wav`` and removes files older than
``max_age`` seconds, then the oldest while the total is over ``max_bytes``; it sweeps on
every write and whenever asked (the server sweeps once a minute). ``max_bytes`` holds for
the newest file too: ``/tts`` asks for ``room`` for what it estimates before it renders
(more than ``max_bytes`` is refused), older files go to make it, and the file itself is
written with that cap (``WavWriter``), so the directory never holds more.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..audio import Audio, WavTooLarge, write_wav_atomic
from ..audio.wav import remove_stale_temp
from ..core.announcement import Announcement
from ..core.events import TERMINAL, Event
from ..core.files import make_dirs

_LOGGER = logging.getLogger(__name__)

AUDIO_ID_RE = re.compile(r"^[0-9a-f]{32}$")


class RecentAnnouncements:
    def __init__(self, max_announcements: int = 200, max_events: int = 64) -> None:
        self.max_announcements = max_announcements
        self.max_events = max_events
        self._lock = threading.Lock()
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def on_event(self, ev: Event, ann: Announcement | None) -> None:
        event = ev.to_wire()  # kept as published on P/events
        ann_id = ev.id
        with self._lock:
            item = self._items.get(ann_id)
            if item is None:
                item = {
                    "id": ann_id,
                    "text": None,
                    "targets": [],
                    "speakers": [],
                    "priority": None,
                    "emotion": None,
                    "source": None,
                    "received": None,
                    "events": [],
                }
                self._items[ann_id] = item
                while len(self._items) > self.max_announcements:
                    self._items.popitem(last=False)
            if ann is not None and item["text"] is None:
                item.update(
                    text=ann.text,
                    targets=list(ann.targets),
                    speakers=list(ann.speakers),
                    priority=ann.priority,
                    emotion=ann.emotion,
                    source=ann.source,
                    received=ann.received,
                )
            events = item["events"]
            events.append(event)
            if len(events) > self.max_events:
                del events[1 : len(events) - self.max_events + 1]  # keep the first (queued) and the latest

    def get(self, ann_id: str) -> dict[str, Any] | None:
        with self._lock:
            item = self._items.get(ann_id)
            return None if item is None else _copy(item)

    def recent(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self._items.values())[-limit:]
            return [_copy(i) for i in reversed(items)]


def _copy(item: dict[str, Any]) -> dict[str, Any]:
    out = dict(item)
    out["events"] = [dict(e) for e in item["events"]]
    out["state"] = summary_state(out["events"], out["speakers"])
    return out


def summary_state(events: list[dict[str, Any]], speakers: list[str]) -> str:
    """One state for the whole announcement from its events (the spool's word wins where it has one)."""
    if not events:
        return "unknown"
    last: str = events[-1]["state"]
    if last in ("queued", "rejected"):
        return last
    per_speaker: dict[str, str] = {}
    for e in events:
        if e.get("speaker"):
            per_speaker[e["speaker"]] = e["state"]
    if speakers and all(per_speaker.get(s) in TERMINAL for s in speakers):
        states = {per_speaker[s] for s in speakers}
        return states.pop() if len(states) == 1 else "mixed"
    if any(v == "started" for v in per_speaker.values()):
        return "started"
    return "queued" if last in TERMINAL else last


class AudioStore:
    def __init__(self, directory: Path, max_age: float, max_bytes: int, clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self.max_age = max_age
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._reserved = 0  # bytes promised to renders in progress
        make_dirs(self.directory)

    def new_id(self) -> tuple[str, Path]:
        audio_id = uuid.uuid4().hex
        return audio_id, self.directory / f"{audio_id}.wav"

    def reserve(self, nbytes: int) -> None:
        """Make room for a file of about ``nbytes`` (removing the oldest); WavTooLarge if it cannot fit.
        Pair with ``release(nbytes)`` once the file is written (or not)."""
        if nbytes > self.max_bytes:
            raise WavTooLarge(f"about {nbytes} bytes is over the limit of {self.max_bytes} bytes")
        with self._lock:
            self._reserved += nbytes
        self.sweep()

    def release(self, nbytes: int) -> None:
        with self._lock:
            self._reserved = max(0, self._reserved - nbytes)

    def path(self, audio_id: str) -> Path | None:
        """The WAV of ``audio_id`` if it is still kept (ids are checked: no path tricks)."""
        if not AUDIO_ID_RE.match(audio_id):
            return None
        p = self.directory / f"{audio_id}.wav"
        try:
            if self._clock() - p.stat().st_mtime > self.max_age:
                return None
        except OSError:
            return None
        return p

    def put(self, audio: Audio) -> str:
        audio_id = uuid.uuid4().hex
        write_wav_atomic(self.directory / f"{audio_id}.wav", audio)
        self.sweep()
        return audio_id

    def sweep(self) -> int:
        """Remove expired WAVs, then the oldest while over the size cap. Returns how many went."""
        now = self._clock()
        removed = remove_stale_temp(self.directory, now)  # a /tts being written when the daemon died
        with self._lock:
            files: list[tuple[float, int, Path]] = []
            for p in self.directory.glob("*.wav"):
                try:
                    st = p.stat()
                except OSError:
                    continue
                if now - st.st_mtime > self.max_age:
                    removed += _unlink(p)
                else:
                    files.append((st.st_mtime, st.st_size, p))
            total = sum(size for _, size, _ in files) + self._reserved
            for _, size, p in sorted(files, key=lambda f: f[0]):  # the newest too: the cap holds
                if total <= self.max_bytes:
                    break
                removed += _unlink(p)
                total -= size
        if removed:
            _LOGGER.debug("http: removed %d generated WAV(s)", removed)
        return removed


def _unlink(p: Path) -> int:
    try:
        p.unlink()
        return 1
    except OSError:
        return 0
