"""Kokoro beside embedded-zh: first audio, RTF at 1 and 2 threads, the gap after the chime, daemon peak RSS.

In this process, over the public corpus (emotion from the corpus), engines created from their
config models, interleaved text by text (as ``bench/engine.py`` does, whose helpers these are):

* ``embedded-zh 2t`` (the peer), ``kokoro zf_xiaoyi 1t`` and ``kokoro zf_xiaoyi 2t``;
* **first audio**: from ``clauses(text)`` to the first audio of the first clause (Kokoro renders a
  clause whole; its first clause is cut early at a word boundary); **RTF**: synthesis time /
  seconds of speech (``value`` the corpus total, p50/p95 per text);
* **gap after the chime**: how long a speaker would wait for speech after its chime, ``max(0,
  first audio - chime)``, the chime being the ``ding-dong`` prelude a sounddevice speaker plays
  first (150 ms lead-in + 1.40 s chime and breath; the player writes it while the first clause
  renders);

the peak RSS of a fresh process with only Kokoro's Mandarin engine (and with its English engine
too, which shares the model) after rendering the corpus's first five texts; then the daemon
(``announcer run`` as a subprocess, a real mosquitto, engines ``zh`` embedded-zh and ``kokoro`` 2
threads, two file speakers): peak RSS (``VmHWM``) after READY and after the corpus was spoken by
each engine.

Targets (issue 16): first audio <= 400 ms p50 and RTF <= 0.30 with 2 threads; daemon peak RSS
<= 700 MiB with embedded-zh and kokoro loaded; no gap after the chime. Reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from announcer.core.errors import EngineUnavailable
from announcer.engines.base import Engine, create_engine, engine_module

from .common import (
    BenchError,
    OtherLoad,
    figure,
    find_corpus,
    load_corpus,
    mean,
    peak_rss_mb,
    percentile,
    progress,
)
from .engine import Run, _jobs, load, measure, render

BENCH = "kokoro"
VOICE = "zf_xiaoyi"
TARGET_FIRST_AUDIO_MS = 400.0
TARGET_RTF = 0.30
TARGET_RSS_MIB = 700.0
PRELUDE_S = 0.150 + 0.45 + 0.80 + 0.15  # lead-in, ding-dong (two tones), the breath after it


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--kokoro-repeat", type=int, default=1, metavar="N", help="measured passes (default: 1)")
    group.add_argument("--kokoro-no-daemon", action="store_true", help="skip the daemon's peak RSS")


def _engines(cache: Path) -> list[tuple[str, Engine]]:
    zh_cfg = engine_module("embedded-zh").Config(type="embedded-zh", threads=2)
    out = [("embedded-zh 2t", create_engine("bench-zh", zh_cfg, cache))]
    for threads in (1, 2):
        cfg = engine_module("kokoro").Config(type="kokoro", voice=VOICE, threads=threads)
        out.append((f"kokoro {VOICE} {threads}t", create_engine(f"bench-kokoro-{threads}t", cfg, cache)))
    return out


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    corpus = load_corpus(find_corpus(args.corpus))
    jobs = _jobs(corpus)
    cache = Path(tempfile.mkdtemp(prefix="bench-kokoro-"))
    figures: list[dict[str, Any]] = []
    loaded: list[tuple[Run, Engine]] = []
    try:
        for label, engine in _engines(cache):
            progress(f"kokoro: loading {label}")
            try:
                loaded.append((load(label, engine), engine))
            except EngineUnavailable as exc:
                raise BenchError(str(exc)) from None
            for job in jobs[:3]:  # a short warm-up: the first calls of a fresh session are slower
                render(engine, job)
            figures.append(
                figure(BENCH, f"{label} load", loaded[-1][0].load_seconds, "s", note="incl. its warm-up call")
            )
        figures.append(
            figure(BENCH, "peak RSS, this process, all three loaded", peak_rss_mb(), "MiB", note="ru_maxrss")
        )
        progress(f"kokoro: {args.kokoro_repeat} measured pass(es) over {len(jobs)} texts, engines interleaved")
        other = OtherLoad()
        other.start()
        measure(loaded, jobs, max(1, args.kokoro_repeat))
        share = other.stop()
    finally:
        for _, engine in loaded:
            engine.close()
        shutil.rmtree(cache, ignore_errors=True)
    if share is not None:
        figures.append(figure(BENCH, "CPU used by other processes", 100 * share, "%", note="during the passes"))
    peer = loaded[0][0]
    for r, _ in loaded:
        first_ms = [s * 1000 for s in r.first_audio]
        rtfs = [s / a for s, a in zip(r.synth, r.audio) if a > 0]
        gaps = [max(0.0, s - PRELUDE_S) * 1000 for s in r.first_audio]
        two = r.label.endswith("2t") and r.label.startswith("kokoro")
        f_first = figure(BENCH, f"{r.label} first audio", percentile(first_ms, 50), "ms", first_ms, note="value = p50")
        f_rtf = figure(BENCH, f"{r.label} RTF", sum(r.synth) / sum(r.audio), "x", rtfs, note="value = corpus total")
        f_gap = figure(
            BENCH,
            f"{r.label} gap after the chime",
            percentile(gaps, 50),
            "ms",
            gaps,
            note=f"value = p50; max(0, first audio - {PRELUDE_S:.2f} s of lead-in and chime)",
        )
        if two:
            f_first.update(target=TARGET_FIRST_AUDIO_MS, met=f_first["value"] <= TARGET_FIRST_AUDIO_MS)
            f_rtf.update(target=TARGET_RTF, met=f_rtf["value"] <= TARGET_RTF)
            f_gap.update(target=0.0, met=f_gap["p95"] <= 0.0)
        if r is not peer:
            for f, peer_value in (
                (f_first, percentile([s * 1000 for s in peer.first_audio], 50)),
                (f_rtf, sum(peer.synth) / sum(peer.audio)),
            ):
                f.update(peer=f"{peer.label} {f['name'].split()[-1]}", ratio=f["value"] / peer_value)
        figures += [f_first, f_rtf, f_gap]
        figures.append(
            figure(
                BENCH,
                f"{r.label} first clause speech",
                mean(r.first_clause_audio),
                "s",
                r.first_clause_audio,
                note="value = mean; the first clause (Kokoro: the first piece of it)",
            )
        )
    for engines in (("zf_xiaoyi",), ("zf_xiaoyi", "af_heart")):
        figures.append(_alone_rss(engines, [line.text for line in corpus[:5]]))
    if not args.kokoro_no_daemon:
        figures += _daemon_rss(corpus)
    return figures


_ALONE = """
import json, sys
from pathlib import Path
from announcer.engines.base import Style, create_engine, engine_module
voices, texts, cache = json.loads(sys.argv[1]), json.loads(sys.argv[2]), Path(sys.argv[3])
Config = engine_module("kokoro").Config
engines = [create_engine(v, Config(type="kokoro", voice=v, threads=2), cache) for v in voices]
for e in engines:
    e.load()
for t in texts:
    for c in engines[0].clauses(t):
        engines[0].synthesize_clause(c, Style())
for e in engines[1:]:
    for c in e.clauses("Attention please, the train to Beijing is now arriving on platform two."):
        e.synthesize_clause(c, Style())
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so a child of the (large) benchmark process
# would report the parent's size
print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024)
"""


def _alone_rss(voices: tuple[str, ...], texts: list[str]) -> dict[str, Any]:
    import subprocess
    import sys

    with tempfile.TemporaryDirectory(prefix="bench-kokoro-rss-") as cache:
        args = [sys.executable, "-c", _ALONE, json.dumps(voices), json.dumps(texts, ensure_ascii=False), cache]
        out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        raise BenchError(f"kokoro alone: {out.stderr.strip()[-500:]}")
    return figure(
        BENCH,
        f"peak RSS, a process with kokoro {' + '.join(voices)} (2t)",
        float(out.stdout.strip().splitlines()[-1]),
        "MiB",
        note="VmHWM after five corpus texts (and one English sentence); engines share one model",
    )


def _daemon_rss(corpus: list[Any]) -> list[dict[str, Any]]:
    from ._stack import Daemon, EventLog, start_broker, unique_text

    workdir = Path(tempfile.mkdtemp(prefix="bench-kokoro-daemon-"))
    broker = start_broker(workdir)
    try:
        client = broker.client()
        speakers = "\n".join(f"  {s}: {{type: file, directory: {json.dumps(str(workdir / s))}}}" for s in ("f1", "f2"))
        body = (
            "engines:\n  zh: {type: embedded-zh, threads: 2}\n  kokoro: {type: kokoro, voice: zf_xiaoyi, threads: 2}\n"
            f"defaults: {{engine: zh, targets: [f1]}}\ncache: {{directory: {json.dumps(str(workdir / 'cache'))}}}\n"
            f"speakers:\n{speakers}\n"
        )
        daemon = Daemon(workdir / "d", broker, body)
        try:
            events = EventLog(client, daemon.topic("events"))
            daemon.spawn()
            daemon.wait_ready(timeout=300.0)
            idle = daemon.status_kib("VmHWM") / 1024.0
            progress(f"kokoro: daemon: {len(corpus)} texts on each engine, on 2 file speakers")
            ids = []
            for n, line in enumerate(corpus):
                for engine in ("zh", "kokoro"):
                    ann_id = f"{engine}-{n}"
                    ids.append(ann_id)
                    payload = {
                        "id": ann_id,
                        "text": unique_text(line.text, 7000 + n),
                        "engine": engine,
                        "targets": ["f1", "f2"],
                        "emotion": line.emotion,
                    }
                    client.publish(daemon.topic("say"), json.dumps(payload, ensure_ascii=False).encode(), qos=1)
            for ann_id in ids:
                for s in ("f1", "f2"):
                    events.wait(ann_id, "finished", s, timeout=900.0)
            loaded = daemon.status_kib("VmHWM") / 1024.0
        except BaseException:
            progress(daemon.log_tail())
            raise
        finally:
            daemon.close()
    finally:
        broker.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return [
        figure(BENCH, "daemon peak RSS idle (embedded-zh + kokoro)", idle, "MiB", note="VmHWM after READY"),
        figure(
            BENCH,
            "daemon peak RSS after the corpus on both engines",
            loaded,
            "MiB",
            target=TARGET_RSS_MIB,
            met=loaded <= TARGET_RSS_MIB,
            note="VmHWM; every corpus text on each engine, to two file speakers, uncached",
        ),
    ]
