"""Helpers shared by the benchmarks: figures, percentiles, output, the corpus, memory, the machine."""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TextIO

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS_NAME = "announcements-zh.tsv"
# the public corpus: the shared checkout first, then next to the repository
CORPUS_CANDIDATES: tuple[Path, ...] = (
    Path("/work/shared/corpus") / CORPUS_NAME,
    REPO_ROOT.parent / "shared" / "corpus" / CORPUS_NAME,
    REPO_ROOT / "tests" / "data" / CORPUS_NAME,  # a verbatim copy kept in the repository
)

# key order of a figure, as printed in JSON lines
FIGURE_KEYS: tuple[str, ...] = (
    "bench",
    "name",
    "value",
    "unit",
    "n",
    "p50",
    "p95",
    "peer",
    "ratio",
    "target",
    "met",
    "note",
)


class BenchError(Exception):
    """A benchmark cannot run (missing corpus, engine ...); the message says why and what to do."""


# --- statistics ---------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


# --- figures ------------------------------------------------------------------------------


def figure(
    bench: str, name: str, value: float, unit: str, samples: Sequence[float] | None = None, **extra: Any
) -> dict[str, Any]:
    """One result. With ``samples``: ``n``, ``p50`` and ``p95`` over them (``value`` is chosen by the caller).

    ``extra`` may hold ``peer``/``ratio`` (see ``add_peer_ratios``), ``target``/``met`` and ``note``.
    """
    fig: dict[str, Any] = {"bench": bench, "name": name, "value": value, "unit": unit}
    if samples:
        fig.update(n=len(samples), p50=percentile(samples, 50), p95=percentile(samples, 95))
    fig.update({k: v for k, v in extra.items() if v is not None})
    return _ordered(fig)


def _ordered(fig: dict[str, Any]) -> dict[str, Any]:
    """``fig`` with the keys in the documented order (unknown keys last)."""
    return {k: fig[k] for k in FIGURE_KEYS if k in fig} | {k: v for k, v in fig.items() if k not in FIGURE_KEYS}


def add_peer_ratios(figures: list[dict[str, Any]], peer_of: dict[str, str]) -> None:
    """Set ``peer`` and ``ratio = value / peer value`` on figures whose name is a key of ``peer_of``."""
    by_name = {f["name"]: f for f in figures}
    for fig in figures:
        peer = by_name.get(peer_of.get(fig["name"], ""))
        if peer is None or peer is fig or not peer["value"]:
            continue
        fig["peer"] = peer["name"]
        fig["ratio"] = fig["value"] / peer["value"]
    figures[:] = [_ordered(f) for f in figures]


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.4g}") if value else 0.0
    return value


def json_line(fig: dict[str, Any]) -> str:
    return json.dumps({k: _rounded(v) for k, v in fig.items()}, ensure_ascii=False, separators=(", ", ": "))


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if value == 0:
            return "0"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def print_table(figures: Iterable[dict[str, Any]], out: TextIO = sys.stdout) -> None:
    """A fixed-width table of figures; notes and targets follow it as numbered footnotes."""
    columns = ("name", "value", "unit", "n", "p50", "p95", "ratio", "met")
    rows: list[list[str]] = []
    notes: list[str] = []
    for fig in figures:
        row = [_fmt(fig.get(c)) for c in columns]
        text = []
        if "target" in fig:
            text.append(f"target <= {_fmt(fig['target'])} {fig['unit']}")
        if fig.get("note"):
            text.append(fig["note"])
        if text:
            notes.append("; ".join(text))
            row[0] += f" [{len(notes)}]"
        rows.append(row)
    header = ["figure", "value", "unit", "n", "p50", "p95", "ratio", "target"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(columns))]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))
    print(line, file=out)
    print("-" * len(line), file=out)
    for r in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))), file=out)
    for i, note in enumerate(notes, 1):
        print(f"  [{i}] {note}", file=out)


def progress(message: str) -> None:
    """Progress for the human, on stderr (stdout stays table + JSON lines)."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- the corpus -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusLine:
    emotion: str
    priority: str
    text: str


def find_corpus(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``explicit`` if given (must exist), else the first of ``CORPUS_CANDIDATES`` that exists."""
    candidates = (Path(explicit),) if explicit else CORPUS_CANDIDATES
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise BenchError(
        f"corpus not found (tried {tried}); pass --corpus PATH to the tab-separated file of emotion, priority, text"
    )


def load_corpus(path: Path) -> list[CorpusLine]:
    """Lines of ``emotion<TAB>priority<TAB>text``; blank lines and lines starting with '#' are skipped."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"cannot read corpus {path}: {exc}") from None
    lines: list[CorpusLine] = []
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 3 or not parts[2].strip():
            raise BenchError(f"{path}:{number}: expected emotion<TAB>priority<TAB>text, got {line!r}")
        lines.append(CorpusLine(parts[0].strip(), parts[1].strip(), parts[2].strip()))
    if not lines:
        raise BenchError(f"corpus {path} has no announcements")
    return lines


# --- the process and the machine ----------------------------------------------------------


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (it never goes down), in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def load_average() -> float | None:
    """1-minute load average, or None where the platform has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def machine_summary() -> str:
    load = load_average()
    return (
        f"{usable_cpus()} CPUs ({cpu_model()}), Python {platform.python_version()}, "
        f"ai-edge-litert {package_version('ai-edge-litert')}, "
        f"espeakng-loader {package_version('espeakng-loader')}, {platform.system()} {platform.machine()}, "
        f"load average {'?' if load is None else f'{load:.2f}'}"
    )


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (all its threads), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """Share of the machine's CPU time used by other processes between ``start()`` and ``stop()``.

    From ``/proc/stat`` (all CPUs busy time) minus this process's CPU time and that of
    ``pids`` (processes the benchmark started: the daemon, the broker); None off Linux.
    A benchmark shares the machine with whatever else runs: this says how much.
    """

    def __init__(self, pids: Iterable[int] = ()) -> None:
        self._start: tuple[float, float, float] | None = None
        self.pids = tuple(pids)

    def _sample(self) -> tuple[float, float, float] | None:
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return None
        hz = os.sysconf("SC_CLK_TCK")
        busy = sum(fields[:3]) + sum(fields[5:8])  # user nice system, irq softirq steal (not idle, iowait)
        own = os.times()
        ours = own.user + own.system + sum(process_cpu_seconds(pid) for pid in self.pids)
        return busy / hz, ours, time.monotonic()

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> float | None:
        end = self._sample()
        if self._start is None or end is None:
            return None
        busy, own, wall = (e - s for e, s in zip(end, self._start))
        return max(0.0, (busy - own) / (wall * usable_cpus())) if wall > 0 else None


def warn_if_busy() -> None:
    """Other processes on the CPUs skew every timing: say so on stderr."""
    load = load_average()
    if load is not None and load > 0.5:
        progress(
            f"warning: load average {load:.2f} on {usable_cpus()} CPUs before starting; "
            f"timings will be pessimistic (run on an idle machine)"
        )
