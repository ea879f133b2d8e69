"""Engine speed: time to first audio and real-time factor over the public corpus.

For ``embedded-zh`` with 1 and 2 threads, and for ``espeak`` (voice ``cmn``) as a peer
that bounds synthesis cost from below, all in this process:

* load: ``Engine.load()`` (model patching if not cached, interpreters, the engine's warm-up);
* first audio: from the ``clauses(text)`` call to the first piece of the first clause
  from ``synthesize_clause_stream`` (embedded-zh streams a clause in vocoder windows;
  engines that do not stream yield the whole clause) — what a listener waits for,
  before the sink;
* RTF: synthesis time of a whole text (clause splitting included) / seconds of speech
  produced (the pauses the synthesizer appends between clauses are not counted: they
  cost nothing, counting them would flatter the figure); ``value`` is the corpus total,
  p50/p95 are over the texts;
* peak RSS after each embedded engine has loaded and after its warm-up pass
  (cumulative: ``ru_maxrss`` never drops);
* where the 2-thread engine spends its time (acoustic model, vocoder, tensor allocation,
  the rest: text front end and Python), timed by wrapping its interpreters' methods;
* the CPU share other processes used meanwhile (timings on a busy machine are pessimistic).

Each engine renders the whole corpus once unmeasured (warm-up); the measured passes then
interleave the engines text by text, so that background load weighs on all alike. Ratios
are against the ``embedded-zh`` 2-thread figure. Targets (issue): RTF <= 0.05 and first
audio <= 80 ms with 2 threads, checked on p95 and reported, never asserted.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from announcer.core.emotions import resolve_emotion
from announcer.core.errors import EngineUnavailable
from announcer.engines.base import Engine, Style, create_engine, engine_module

from .common import (
    BenchError,
    CorpusLine,
    OtherLoad,
    add_peer_ratios,
    figure,
    find_corpus,
    load_corpus,
    mean,
    peak_rss_mb,
    progress,
)

BENCH = "engine"
TARGET_RTF = 0.05
TARGET_FIRST_AUDIO_MS = 80.0
TARGET_THREADS = 2
ESPEAK_VOICE = "cmn"


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--engine-threads", default="1,2", metavar="N,N", help="embedded-zh thread counts to measure (default: 1,2)"
    )
    group.add_argument(
        "--engine-repeat",
        type=int,
        default=2,
        metavar="N",
        help="measured passes over the corpus per engine, after the warm-up pass (default: 2)",
    )
    group.add_argument("--engine-no-espeak", action="store_true", help="skip the espeak peer")
    group.add_argument(
        "--engine-cache-dir",
        metavar="DIR",
        help="cache directory for the patched acoustic model (default: announcer's)",
    )


@dataclass
class Run:
    """What one engine did over the measured passes."""

    label: str
    load_seconds: float
    rss_after_load: float = 0.0  # MiB, peak so far
    first_clause_audio: list[float] = field(default_factory=list)  # seconds of speech, one per text
    first_audio: list[float] = field(default_factory=list)  # seconds, one per text
    synth: list[float] = field(default_factory=list)  # seconds, one per text
    audio: list[float] = field(default_factory=list)  # seconds of speech, one per text


@dataclass(frozen=True)
class Job:
    text: str
    style: Style


def _jobs(corpus: list[CorpusLine]) -> list[Job]:
    jobs = []
    for i, line in enumerate(corpus, 1):
        emotion, warning = resolve_emotion(line.emotion)
        if warning:
            progress(f"corpus entry {i}: {warning}")
        jobs.append(Job(line.text, Style(emotion=emotion)))
    return jobs


def render(engine: Engine, job: Job) -> tuple[float, float, float, float]:
    """(first audio s, synthesis s, speech s, speech s of the first clause) for one text.

    Clause by clause through ``synthesize_clause_stream``, as the synthesizer does for
    clauses not in its cache (without its cache and pauses); first audio is the first
    piece of the first clause (the whole clause for engines that do not stream).
    """
    start = time.perf_counter()
    clauses = engine.clauses(job.text)
    first: float | None = None
    first_samples = samples = 0
    for n, clause in enumerate(clauses):
        for audio in engine.synthesize_clause_stream(clause, job.style):
            if first is None:
                first = time.perf_counter() - start
            if n == 0:
                first_samples += audio.size
            samples += audio.size
    total = time.perf_counter() - start
    rate = engine.sample_rate
    return (total if first is None else first), total, samples / rate, first_samples / rate


def load(label: str, engine: Engine) -> Run:
    started = time.perf_counter()
    engine.load()
    return Run(label, time.perf_counter() - started, rss_after_load=peak_rss_mb())


def warm_up(engine: Engine, jobs: list[Job]) -> None:
    for job in jobs:
        render(engine, job)


def measure(runs: list[tuple[Run, Engine]], jobs: list[Job], repeat: int) -> None:
    """Measured passes, engines interleaved text by text (in rotating order), so that whatever else
    the machine is doing meanwhile weighs on every engine alike."""
    for _ in range(repeat):
        for i, job in enumerate(jobs):
            for run, engine in runs[i % len(runs) :] + runs[: i % len(runs)]:
                first, synth, audio, first_audio = render(engine, job)
                run.first_audio.append(first)
                run.synth.append(synth)
                run.audio.append(audio)
                run.first_clause_audio.append(first_audio)


@contextmanager
def _timing(obj: Any, method: str, buckets: dict[str, float], bucket: str) -> Iterator[None]:
    """Add the time of every ``obj.method()`` call to ``buckets[bucket]`` (an instance attribute, removed after)."""
    original: Callable[..., Any] = getattr(obj, method)

    def timed(*a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(*a, **kw)
        finally:
            buckets[bucket] = buckets.get(bucket, 0.0) + time.perf_counter() - t0

    setattr(obj, method, timed)
    try:
        yield
    finally:
        delattr(obj, method)


def split_time(engine: Engine, jobs: list[Job]) -> dict[str, float] | None:
    """Seconds per stage over one pass of the corpus, or None if the engine's internals are not as expected.

    Reads the embedded engine's private interpreters: a measurement aid, not an API.
    """
    acoustic, vocoder = getattr(engine, "_acoustic", None), getattr(engine, "_vocoder", None)
    if acoustic is None or vocoder is None or not hasattr(vocoder, "invoke"):
        return None
    buckets: dict[str, float] = {}
    with (
        _timing(acoustic, "invoke", buckets, "acoustic model"),
        _timing(vocoder, "invoke", buckets, "vocoder"),
        _timing(acoustic, "allocate_tensors", buckets, "tensor allocation"),
        _timing(vocoder, "allocate_tensors", buckets, "tensor allocation"),
        _timing(acoustic, "resize_tensor_input", buckets, "tensor allocation"),
        _timing(vocoder, "resize_tensor_input", buckets, "tensor allocation"),
    ):
        total = sum(render(engine, job)[1] for job in jobs)
    buckets["front end + python"] = total - sum(buckets.values())
    buckets["total"] = total
    return buckets


def _embedded_config(threads: int) -> Any:
    return engine_module("embedded-zh").Config(type="embedded-zh", threads=threads)


def _thread_counts(spec: str) -> list[int]:
    try:
        counts = [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        counts = []
    if not counts or any(c < 1 for c in counts):
        raise BenchError(f"--engine-threads: expected thread counts like 1,2, got {spec!r}")
    return counts


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    corpus_path = find_corpus(args.corpus)
    jobs = _jobs(load_corpus(corpus_path))
    repeat = max(1, args.engine_repeat)
    threads = _thread_counts(args.engine_threads)
    cache_dir = Path(args.engine_cache_dir) if args.engine_cache_dir else None
    ref_threads = TARGET_THREADS if TARGET_THREADS in threads else max(threads)
    reference = f"embedded-zh {ref_threads}t"
    progress(f"engine: {len(jobs)} texts from {corpus_path}")

    figures: list[dict[str, Any]] = [
        figure(BENCH, "peak RSS before engines", peak_rss_mb(), "MiB", note="imports only (numpy, pydantic, announcer)")
    ]
    loaded: list[tuple[Run, Engine]] = []
    for n in threads:
        label = f"embedded-zh {n}t"
        engine = create_engine(f"bench-zh-{n}t", _embedded_config(n), cache_dir)
        progress(f"engine: loading and warming up {label}")
        try:
            loaded.append((load(label, engine), engine))
        except EngineUnavailable as exc:
            raise BenchError(str(exc)) from None
        warm_up(engine, jobs)
        figures.append(
            figure(
                BENCH,
                f"{label} peak RSS after load",
                loaded[-1][0].rss_after_load,
                "MiB",
                note="cumulative: includes every engine loaded before in this process",
            )
        )
        figures.append(
            figure(
                BENCH,
                f"{label} peak RSS after warm-up pass",
                peak_rss_mb(),
                "MiB",
                note="cumulative; after rendering the corpus once (the acoustic model's "
                "arena grows with the longest clause; the vocoder's is sized once)",
            )
        )
    if not args.engine_no_espeak:
        label = f"espeak {ESPEAK_VOICE}"
        engine = create_engine(
            "bench-espeak", engine_module("espeak").Config(type="espeak", voice=ESPEAK_VOICE), cache_dir
        )
        progress(f"engine: loading and warming up {label}")
        try:
            loaded.append((load(label, engine), engine))
            warm_up(engine, jobs)
        except EngineUnavailable as exc:
            progress(f"engine: espeak peer skipped: {exc}")
    progress(f"engine: {repeat} measured passes, engines interleaved")
    other = OtherLoad()
    other.start()
    measure(loaded, jobs, repeat)
    other_share = other.stop()
    if other_share is not None:
        figures.append(
            figure(
                BENCH,
                "CPU used by other processes",
                100.0 * other_share,
                "%",
                note="during the measured passes, share of all CPUs; above a few % the timings are pessimistic",
            )
        )
    runs = [r for r, _ in loaded]
    engines = {r.label: e for r, e in loaded}

    peer_of: dict[str, str] = {}
    for r in runs:
        is_ref = r.label == reference
        first_ms = [s * 1000 for s in r.first_audio]
        rtfs = [s / a for s, a in zip(r.synth, r.audio) if a > 0]
        rtf_total = sum(r.synth) / sum(r.audio)
        load_note = None
        if r.label.startswith("embedded"):
            load_note = "includes the engine's own warm-up"
            if r is runs[0]:
                load_note += " and importing LiteRT (first engine loaded)"
        f_load = figure(BENCH, f"{r.label} load", r.load_seconds, "s", note=load_note)
        f_first = figure(
            BENCH,
            f"{r.label} first audio",
            mean(first_ms),
            "ms",
            first_ms,
            note="value = mean; first streamed piece of the first clause, clause splitting included",
        )
        f_rtf = figure(
            BENCH,
            f"{r.label} RTF",
            rtf_total,
            "x",
            rtfs,
            note="value = corpus total synth s / speech s; p50/p95 per text",
        )
        if is_ref:
            f_first.update(target=TARGET_FIRST_AUDIO_MS, met=f_first["p95"] <= TARGET_FIRST_AUDIO_MS)
            f_first["note"] += f"; target checked on p95 (p50 {f_first['p50']:.1f} ms)"
            f_rtf.update(target=TARGET_RTF, met=f_rtf["p95"] <= TARGET_RTF)
            f_rtf["note"] += f"; target checked on p95 (p50 {f_rtf['p50']:.4f})"
        figures += [f_load, f_first, f_rtf]
        if is_ref:
            figures.append(
                figure(
                    BENCH,
                    f"{r.label} first clause speech",
                    mean(r.first_clause_audio),
                    "s",
                    r.first_clause_audio,
                    note="value = mean; length of the first clause, which first audio scales with",
                )
            )
        for metric in ("load", "first audio", "RTF"):
            peer_of[f"{r.label} {metric}"] = f"{reference} {metric}"
        if r.label == "espeak " + ESPEAK_VOICE:
            f_rtf["note"] += "; peer: formant synthesis, a lower bound for synthesis cost"

    if reference in engines:
        progress(f"engine: split timing of {reference}")
        split = split_time(engines[reference], jobs)
        if split is None:
            progress("engine: split timing skipped (the engine's interpreters are not reachable)")
        else:
            total = split.pop("total")
            for stage, seconds in split.items():
                figures.append(
                    figure(
                        BENCH,
                        f"{reference} share: {stage}",
                        100.0 * seconds / total,
                        "%",
                        note=f"{seconds:.2f} s of {total:.2f} s, one pass" if stage == "vocoder" else None,
                    )
                )
    figures.append(figure(BENCH, "peak RSS at the end", peak_rss_mb(), "MiB", note="every engine loaded"))
    add_peer_ratios(figures, peer_of)
    for engine in engines.values():
        engine.close()
    return figures
