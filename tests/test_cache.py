"""The clause audio cache: keys, round trips, LRU eviction, damage and sharing between processes."""

from __future__ import annotations

import logging
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest

from announcer.config import CacheConfig
from announcer.playback.clause_cache import ClauseCache

pytestmark = pytest.mark.unit  # the fast lane (make check)

BASE = ("embedded-zh:v1", "zh-female", "happy", 1.0, 1.0, "各位乘客，")


def samples(seed: int, n: int = 1000) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, n).astype(np.float32)


def entry_bytes(tmp_path: Path, n: int = 1000) -> int:
    probe = ClauseCache(tmp_path / "probe", 10**9)
    probe.put("ab" * 32, samples(0, n))
    return probe.stats()["bytes"]


def age(cache: ClauseCache, key: str, seconds_ago: float) -> None:
    t = os.path.getmtime(cache.path(key)) - seconds_ago
    os.utime(cache.path(key), (t, t))


def test_round_trip_is_exact(tmp_path: Path) -> None:
    cache = ClauseCache(tmp_path, 10**7)
    key = cache.key(*BASE)
    assert cache.get(key) is None
    audio = samples(1)
    cache.put(key, audio)
    got = cache.get(key)
    assert got is not None and got.dtype == np.float32 and got.ndim == 1
    assert np.array_equal(got, audio)
    # other dtypes are stored as float32; empty audio round-trips too
    cache.put(key, audio.astype(np.float64))
    assert np.array_equal(cache.get(key), audio)
    empty = cache.key(*BASE[:-1], "")
    cache.put(empty, np.zeros(0, np.float32))
    assert cache.get(empty).size == 0
    assert cache.stats()["entries"] == 2


def test_layout_is_fanned_out(tmp_path: Path) -> None:
    cache = ClauseCache(tmp_path, 10**7)
    key = cache.key(*BASE)
    cache.put(key, samples(1))
    assert cache.path(key) == tmp_path / key[:2] / key[2:4] / f"{key}.npy"
    assert cache.path(key).is_file()
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_key_is_sensitive_to_every_field() -> None:
    base = ClauseCache.key(*BASE)
    assert len(base) == 64 and int(base, 16) >= 0
    assert ClauseCache.key(*BASE) == base
    variants = [
        ("embedded-zh:v2", *BASE[1:]),
        (BASE[0], "zh-male", *BASE[2:]),
        (*BASE[:2], "sad", *BASE[3:]),
        (*BASE[:3], 1.5, *BASE[4:]),
        (*BASE[:4], 1.25, BASE[5]),
        (*BASE[:5], "各位乘客。"),
    ]
    keys = {ClauseCache.key(*v) for v in variants}
    assert len(keys) == len(variants) and base not in keys
    # floats count to 3 decimals
    assert ClauseCache.key(*BASE[:3], 1.0004, *BASE[4:]) == base
    assert ClauseCache.key(*BASE[:3], 1.001, *BASE[4:]) != base
    # fields cannot bleed into each other
    assert ClauseCache.key("a", "bc", "x", 1, 1, "") != ClauseCache.key("ab", "c", "x", 1, 1, "")


def test_lru_eviction_keeps_recently_used(tmp_path: Path) -> None:
    size = entry_bytes(tmp_path)
    cache = ClauseCache(tmp_path / "c", max_bytes=int(size * 5.5))
    keys = [cache.key(*BASE[:5], f"clause {i}") for i in range(5)]
    for i, key in enumerate(keys):
        cache.put(key, samples(i))
        age(cache, key, 100 - i)  # keys[0] is the oldest
    assert all(cache.get(k) is not None for k in keys[1:])  # touch all but keys[0] ...
    assert cache.get(keys[0]) is not None  # ... then keys[0] last: it is now the most recent
    for k in keys[1:]:
        age(cache, k, 50)
    for i in range(5, 8):
        key = cache.key(*BASE[:5], f"clause {i}")
        cache.put(key, samples(i))
    stats = cache.stats()
    assert stats["bytes"] <= cache.max_bytes
    assert np.array_equal(cache.get(keys[0]), samples(0))  # recently used survived
    assert cache.get(keys[1]) is None  # least recently used went first


def test_running_estimate_avoids_scans_until_due(tmp_path: Path) -> None:
    size = entry_bytes(tmp_path)
    cache = ClauseCache(tmp_path / "c", max_bytes=size * 100, scan_every=50)
    for i in range(60):
        cache.put(cache.key(*BASE[:5], str(i)), samples(i))
    assert cache.scan_count == 2  # the first put (no estimate yet) and the 50th since then
    for i in range(60, 120):  # passing the cap triggers scans as needed, never per put
        cache.put(cache.key(*BASE[:5], str(i)), samples(i))
    assert cache.scan_count < 10
    assert cache.stats()["bytes"] <= cache.max_bytes


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage", "wrong-dtype"])
def test_damaged_file_is_a_miss_and_removed(tmp_path: Path, damage: str) -> None:
    cache = ClauseCache(tmp_path, 10**7)
    key = cache.key(*BASE)
    cache.put(key, samples(1))
    path = cache.path(key)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(b"not a numpy file at all" * 10)
    else:
        np.save(path, np.zeros((2, 3), np.int64))
    assert cache.get(key) is None
    assert not path.exists()
    cache.put(key, samples(1))
    assert np.array_equal(cache.get(key), samples(1))


def test_io_problems_are_logged_once_never_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    cache = ClauseCache(blocker / "cache", 10**7)
    key = cache.key(*BASE)
    with caplog.at_level(logging.DEBUG, logger="announcer.playback.clause_cache"):
        for _ in range(3):
            cache.put(key, samples(1))
            assert cache.get(key) is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot write" in warnings[0].getMessage()
    assert cache.stats()["entries"] == 0


def test_from_config(tmp_path: Path) -> None:
    assert ClauseCache.from_config(CacheConfig(enabled=False, directory=tmp_path)) is None
    cache = ClauseCache.from_config(CacheConfig(directory=tmp_path, max_mb=2))
    assert isinstance(cache, ClauseCache)
    assert cache.directory == tmp_path and cache.max_bytes == 2 * 1024 * 1024
    assert cache.stats() == {"entries": 0, "bytes": 0, "max_bytes": 2 * 1024 * 1024, "directory": str(tmp_path)}


def _hammer(directory: str, max_bytes: int, worker: int, rounds: int) -> None:
    cache = ClauseCache(Path(directory), max_bytes, scan_every=8)
    rng = np.random.default_rng(worker)
    for _ in range(rounds):
        i = int(rng.integers(0, 80))  # both workers share keys: same key, same content
        key = cache.key("eng", "v", "neutral", 1.0, 1.0, f"clause {i}")
        got = cache.get(key)
        if got is not None and not np.array_equal(got, samples(i)):
            raise AssertionError(f"worker {worker} read wrong audio for clause {i}")
        if got is None:
            cache.put(key, samples(i))


def test_two_processes_share_a_directory(tmp_path: Path) -> None:
    size = entry_bytes(tmp_path)
    max_bytes = size * 30
    directory = tmp_path / "shared"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(str(directory), max_bytes, w, 400)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]

    cache = ClauseCache(directory, max_bytes)
    stats = cache.stats()
    # each process rescans every 8 puts, so the other's writes overshoot by at most that many
    assert 0 < stats["bytes"] <= max_bytes + 8 * size
    assert cache.trim()["bytes"] <= max_bytes
    assert not [p for p in directory.rglob("*") if p.name.endswith(".tmp")]
    for path in directory.rglob("*.npy"):
        arr = np.load(path)
        assert arr.dtype == np.float32 and arr.shape == (1000,)
    for i in range(80):
        got = cache.get(cache.key("eng", "v", "neutral", 1.0, 1.0, f"clause {i}"))
        assert got is None or np.array_equal(got, samples(i))
