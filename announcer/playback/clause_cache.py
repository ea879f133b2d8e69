"""Clause audio cache on disk: synthesized clauses keyed by everything that shapes them.

Layout: ``<directory>/<k[0:2]>/<k[2:4]>/<k>.npy``, one float32 ``.npy`` file per clause
(lossless; ``np.load`` with ``allow_pickle=False``). Writes go to a temp file in the
same directory and are renamed into place, so readers (in this or another process)
see a whole entry or none, and concurrent writers of one key simply race to the same
content. A file that vanishes or is truncated under a reader is a miss (and is removed).
Writes are not fsynced: after a power cut an entry may be empty, which reads as a miss.

Size cap: least recently used entries go first. A hit touches the file's mtime; an
eviction scan removes oldest-mtime files until the total is under 90% of the cap (the
slack keeps scans rare). To avoid a directory scan on every ``put`` each instance keeps
a running size estimate (last scan + its own writes) and rescans every ``scan_every``
puts or as soon as the estimate passes the cap. Other processes' writes are only seen
at the next scan, so with P processes the directory can overshoot the cap by at most
about (P - 1) x ``scan_every`` entries between scans. Scans across processes are
serialised with ``fcntl.flock`` on ``<directory>/.lock``.

The cache never raises to its caller for I/O problems (disk full, permissions, a
read-only directory): it logs one warning per kind of problem and acts as a miss.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..core.files import atomic_write, make_dirs

try:  # POSIX only; elsewhere scans of several processes are not serialised
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

_LOGGER = logging.getLogger(__name__)

KEY_VERSION = "clause-cache-v1"  # bump when the key encoding or the file format changes
SUFFIX = ".npy"
TMP_SUFFIX = ".tmp"
LOCK_NAME = ".lock"
LOW_WATER = 0.9  # eviction trims to this fraction of the cap
STALE_TMP_SECONDS = 3600.0  # temp files of crashed writers older than this are removed


class ClauseCache:
    def __init__(self, directory: Path, max_bytes: int, scan_every: int = 256) -> None:
        self.directory = Path(directory).expanduser()
        self.max_bytes = int(max_bytes)
        self.scan_every = max(1, int(scan_every))
        self._lock = threading.Lock()
        self._estimate: int | None = None  # bytes on disk as of the last scan plus our puts since
        self._puts_since_scan = 0
        self._warned: set[str] = set()
        self.scan_count = 0  # directory scans so far (for metrics and tests)

    @classmethod
    def from_config(cls, cfg: Any) -> ClauseCache | None:
        """From ``config.CacheConfig`` (``enabled``, ``directory``, ``max_mb`` in MiB); None when disabled."""
        if not cfg.enabled:
            return None
        return cls(Path(cfg.directory), int(cfg.max_mb * 1024 * 1024))

    # --- keys -------------------------------------------------------------------------
    @staticmethod
    def key(
        engine_fingerprint: str, voice: str | None, emotion: str, intensity: float, speed: float, clause: str
    ) -> str:
        """sha256 hex of a canonical encoding; floats count to 3 decimals."""
        fields = [KEY_VERSION, engine_fingerprint, voice, emotion, _num(intensity), _num(speed), clause]
        blob = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()

    def path(self, key: str) -> Path:
        if len(key) < 5 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"not a cache key: {key!r}")
        return self.directory / key[:2] / key[2:4] / (key + SUFFIX)

    # --- entries ----------------------------------------------------------------------
    def get(self, key: str) -> np.ndarray | None:
        """The cached float32 mono samples, or None (missing, damaged or unreadable)."""
        path = self.path(key)
        try:
            with open(path, "rb") as fh:
                samples = np.load(fh, allow_pickle=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (ValueError, EOFError) as exc:  # truncated or not an .npy file
            self._discard(path, f"damaged ({exc})")
            return None
        except OSError as exc:
            self._warn("read", "clause cache: cannot read %s (%s); treating as a miss", path, exc)
            return None
        if not isinstance(samples, np.ndarray) or samples.dtype != np.float32 or samples.ndim != 1:
            self._discard(path, f"unexpected array {getattr(samples, 'dtype', '?')}")
            return None
        try:
            os.utime(path)  # least recently used goes first
        except OSError:
            pass  # evicted meanwhile, or a read-only cache: the samples are still good
        return samples

    def put(self, key: str, samples: np.ndarray) -> None:
        """Store ``samples`` (converted to float32 mono) atomically; problems are logged, not raised."""
        path = self.path(key)
        data = np.ascontiguousarray(np.asarray(samples, dtype=np.float32).reshape(-1))
        try:
            size = atomic_write(
                path,
                lambda fh: np.save(fh, data, allow_pickle=False),
                durable=False,
                prefix="." + key[:16],
                suffix=TMP_SUFFIX,
            )
        except OSError as exc:
            self._warn("write", "clause cache: cannot write to %s (%s); not caching", self.directory, exc)
            return
        with self._lock:
            if self._estimate is not None:
                self._estimate += size
            self._puts_since_scan += 1
            due = self._estimate is None or self._estimate > self.max_bytes or self._puts_since_scan >= self.scan_every
        if due:
            self.trim()

    # --- size -------------------------------------------------------------------------
    def trim(self) -> dict[str, int]:
        """Scan the directory, evict least recently used entries if over the cap; return stats."""
        try:
            with self._lock, _DirLock(self.directory / LOCK_NAME):
                entries = self._scan()
                total = sum(size for _, size, _ in entries)
                if total > self.max_bytes:
                    target = int(self.max_bytes * LOW_WATER)
                    entries.sort(key=lambda e: e[0])
                    evicted = 0
                    for _mtime, size, path in entries:
                        if total <= target:
                            break
                        _unlink(path)  # fails only if another process removed it first
                        total -= size
                        evicted += 1
                    entries = entries[evicted:]
                    _LOGGER.debug("clause cache: evicted %d entries, %d bytes left", evicted, total)
                self._estimate = total
                self._puts_since_scan = 0
                return {"entries": len(entries), "bytes": total}
        except OSError as exc:
            self._warn("evict", "clause cache: cannot scan %s (%s)", self.directory, exc)
            return {"entries": 0, "bytes": 0}

    def stats(self) -> dict[str, Any]:
        """Entries and bytes on disk now (a directory scan; also refreshes the running estimate)."""
        try:
            entries = self._scan()
        except OSError as exc:
            self._warn("evict", "clause cache: cannot scan %s (%s)", self.directory, exc)
            entries = []
        total = sum(size for _, size, _ in entries)
        with self._lock:
            self._estimate = total
        return {"entries": len(entries), "bytes": total, "max_bytes": self.max_bytes, "directory": str(self.directory)}

    def _scan(self) -> list[tuple[float, int, Path]]:
        """(mtime, size, path) of every entry; removes stale temp files. Tolerates concurrent changes."""
        out: list[tuple[float, int, Path]] = []
        self.scan_count += 1
        if not self.directory.is_dir():
            return out
        now = time.time()
        for level1 in _subdirs(self.directory):
            for level2 in _subdirs(level1):
                try:
                    files = list(os.scandir(level2))
                except FileNotFoundError:
                    continue
                for f in files:
                    try:
                        st = f.stat()
                    except FileNotFoundError:
                        continue
                    if f.name.endswith(SUFFIX):
                        out.append((st.st_mtime, st.st_size, Path(f.path)))
                    elif f.name.endswith(TMP_SUFFIX) and now - st.st_mtime > STALE_TMP_SECONDS:
                        _unlink(Path(f.path))
        return out

    # --- problems ---------------------------------------------------------------------
    def _discard(self, path: Path, why: str) -> None:
        _LOGGER.debug("clause cache: removing %s: %s", path, why)
        _unlink(path)

    def _warn(self, kind: str, msg: str, *args: Any) -> None:
        with self._lock:
            first = kind not in self._warned
            self._warned.add(kind)
        _LOGGER.log(logging.WARNING if first else logging.DEBUG, msg, *args)


def _num(value: float) -> str:
    text = f"{float(value):.3f}"
    return "0.000" if text == "-0.000" else text


def _unlink(path: Path) -> bool:
    try:
        os.unlink(path)
        return True
    except OSError:
        return False


def _subdirs(directory: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(directory) if len(e.name) == 2 and e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []


class _DirLock:
    """Exclusive ``flock`` on a lock file, shared by every process using the directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> _DirLock:
        if fcntl is not None:
            make_dirs(self.path.parent)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None
