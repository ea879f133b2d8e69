"""Intelligibility: the public corpus spoken by each engine/voice, transcribed by an offline Whisper, scored.

Slow (several minutes; not part of ``make test``, nor of a plain ``python -m bench`` unless named:
``python -m bench intelligibility``). For each voice the corpus is rendered in this process
through the synthesizer (the engine's speech and pauses, no chime: what ``say --out --no-chime``
gives), written as WAVs, and scored by ``../shared/tools/asr_cer/asr_cer.py --wav PATH=REFERENCE``
(Whisper base, offline; its own virtual environment, made once by its ``setup.sh``). The
reference is announcer's normalised text (what the voice means to say), so the figures judge the
voice, not the front end's choices. Figures per voice: CER, SylER (toneless syllables: forgives the
recogniser's choice among homophones) and TonER; for the chosen Kokoro voices also per emotion.

Targets (issue 16): the chosen Kokoro Mandarin voices within 3 points of ``embedded-zh``'s SylER;
no emotion worsens a voice's SylER by more than 2 points. Whisper base is small: expect about
±1 point of noise on 20 sentences; compare only figures of one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .common import REPO_ROOT, BenchError, figure, find_corpus, load_corpus, progress

BENCH = "intelligibility"
# the shared meter: next to the repository (../shared), or next to a worktree's parent, or at /work/shared
ASR_TOOLS = tuple(
    p / "shared" / "tools" / "asr_cer" for p in (REPO_ROOT.parent, REPO_ROOT.parent.parent, Path("/work"))
)
ASR_TOOL = next((p for p in ASR_TOOLS if (p / "asr_cer.py").is_file()), ASR_TOOLS[0])
# (label, engine config, voice); the first is the peer
VOICES: tuple[tuple[str, dict[str, Any], str | None], ...] = (
    ("embedded-zh baker", {"type": "embedded-zh"}, None),
    ("kokoro zf_xiaoyi", {"type": "kokoro", "voice": "zf_xiaoyi", "threads": 2}, "zf_xiaoyi"),
    ("kokoro zm_yunxia", {"type": "kokoro", "voice": "zm_yunxia", "threads": 2}, "zm_yunxia"),
    ("kokoro zf_xiaobei", {"type": "kokoro", "voice": "zf_xiaobei", "threads": 2}, "zf_xiaobei"),
    ("kokoro zm_yunjian", {"type": "kokoro", "voice": "zm_yunjian", "threads": 2}, "zm_yunjian"),
    ("kokoro zf_xiaoxiao", {"type": "kokoro", "voice": "zf_xiaoxiao", "threads": 2}, "zf_xiaoxiao"),
    ("kokoro zm_yunxi", {"type": "kokoro", "voice": "zm_yunxi", "threads": 2}, "zm_yunxi"),
    ("kokoro zm_yunyang", {"type": "kokoro", "voice": "zm_yunyang", "threads": 2}, "zm_yunyang"),
    ("kokoro zf_xiaoni", {"type": "kokoro", "voice": "zf_xiaoni", "threads": 2}, "zf_xiaoni"),
)
CHOSEN = ("kokoro zf_xiaoyi", "kokoro zm_yunxia")  # the README's recommended Mandarin voices
EMOTIONS = ("happy", "sad", "angry", "fearful", "surprised")
TARGET_SYLER_POINTS = 3.0
TARGET_EMOTION_POINTS = 2.0


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--intelligibility-voices",
        metavar="N",
        type=int,
        default=len(VOICES),
        help=f"how many of the voices to score, in order (default: all {len(VOICES)}: embedded-zh, then Kokoro's)",
    )
    group.add_argument("--intelligibility-no-emotions", action="store_true", help="neutral only")
    group.add_argument(
        "--intelligibility-emotion-texts",
        type=int,
        default=8,
        metavar="N",
        help="the emotions are scored on the first N corpus texts (default: 8; neutral on all)",
    )
    group.add_argument(
        "--intelligibility-asr-python",
        metavar="PY",
        help="python of the meter's venv (default: made by ../shared/tools/asr_cer/setup.sh)",
    )
    group.add_argument(
        "--intelligibility-first-piece",
        type=int,
        default=None,
        metavar="N",
        help="kokoro: cut the first clause after at most N Chinese characters (0: never; default: the engine's)",
    )
    group.add_argument("--intelligibility-keep", metavar="DIR", help="keep the WAVs and the meter's JSON here")


def _asr_python(explicit: str | None) -> str:
    if explicit:
        return explicit
    setup = ASR_TOOL / "setup.sh"
    if not setup.is_file():
        raise BenchError(f"{setup} is missing: the shared asr_cer meter is needed (../shared/tools/asr_cer)")
    out = subprocess.run(["sh", str(setup)], capture_output=True, text=True)
    if out.returncode != 0:
        raise BenchError(f"asr_cer set-up failed: {out.stderr.strip()[-500:]}")
    return out.stdout.strip().splitlines()[-1]


def _render(
    voices: list[tuple[str, dict[str, Any], str | None]],
    texts: list[str],
    emotions: dict[str, tuple[str, ...]],
    out: Path,
    emotion_texts: int,
) -> list[tuple[str, str, Path, str]]:
    """WAVs of every text per (voice, emotion): ``(system, emotion, path, reference)``."""
    import soundfile as sf

    from announcer.config import parse_config
    from announcer.engines.base import Style
    from announcer.playback.synthesizer import make_synthesizer
    from announcer.text.normalize import normalize

    engines = {f"e{i}": cfg for i, (_, cfg, _) in enumerate(voices)}
    cfg = parse_config(json.dumps({"engines": engines, "cache": {"enabled": False}}))
    synth = make_synthesizer(cfg)
    wavs = []
    for i, (label, _, voice) in enumerate(voices):
        progress(f"intelligibility: rendering {label}")
        for emotion in ("neutral", *emotions.get(label, ())):
            for n, text in enumerate(texts if emotion == "neutral" else texts[:emotion_texts]):
                audio = synth.render_all(text, f"e{i}", Style(emotion=emotion), voice)
                path = out / f"{label.replace(' ', '_')}-{emotion}-{n:02d}.wav"
                sf.write(str(path), np.clip(audio.samples, -1, 1), audio.sample_rate, subtype="PCM_16")
                wavs.append((label, emotion, path, normalize(text)))
    return wavs


def _score(py: str, wavs: list[tuple[str, str, Path, str]], work: Path) -> dict[Path, dict[str, Any]]:
    args = [f"--wav={path}={ref}" for _, _, path, ref in wavs]
    result = work / "asr.json"
    announcer = REPO_ROOT / ".venv" / "bin" / "announcer"
    cmd = [py, str(ASR_TOOL / "asr_cer.py"), "--baseline", "off", "-q", "--json", str(result), "--threads", "2"]
    if announcer.exists():
        cmd += ["--announcer", str(announcer)]
    progress(f"intelligibility: transcribing {len(wavs)} WAVs with Whisper base")
    run = subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=REPO_ROOT)
    if run.returncode != 0 or not result.is_file():
        raise BenchError(f"asr_cer failed: {run.stderr.strip()[-800:]}")
    rows = json.loads(result.read_text())["results"]
    by_index = {int(r["id"][1:]): r for r in rows}
    return {wavs[i][2]: row for i, row in by_index.items()}


def _rates(rows: list[dict[str, Any]]) -> tuple[float, float, float, int]:
    chars = sum(r["ref_len"] for r in rows)
    return (
        100.0 * sum(r["errors"] for r in rows) / chars,
        100.0 * sum(r["syl_errors"] for r in rows) / chars,
        100.0 * sum(r["tonal_errors"] for r in rows) / chars,
        chars,
    )


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from announcer.engines import kokoro

    if args.intelligibility_first_piece is not None:  # _cut_first reads these at each call
        n = args.intelligibility_first_piece
        kokoro.FIRST_PIECE_MIN = min(kokoro.FIRST_PIECE_MIN, n) if n else 10_000
        kokoro.FIRST_PIECE_MAX = n or 10_000
    texts = [line.text for line in load_corpus(find_corpus(args.corpus))]
    voices = list(VOICES[: max(1, args.intelligibility_voices)])
    emotions = {} if args.intelligibility_no_emotions else {label: EMOTIONS for label in (VOICES[0][0], *CHOSEN)}
    py = _asr_python(args.intelligibility_asr_python)
    keep = Path(args.intelligibility_keep) if args.intelligibility_keep else None
    with tempfile.TemporaryDirectory(prefix="bench-asr-") as tmp:
        work = keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        wavs = _render(voices, texts, emotions, work, max(1, args.intelligibility_emotion_texts))
        scored = _score(py, wavs, work)
    figures: list[dict[str, Any]] = []
    neutral_syler: dict[str, float] = {}
    emotion_texts = max(1, args.intelligibility_emotion_texts)
    peer = voices[0][0]
    for label, *_ in voices:
        for emotion in ("neutral", *emotions.get(label, ())):
            rows = [scored[p] for sys_, emo, p, _ in wavs if sys_ == label and emo == emotion and p in scored]
            if not rows:
                continue
            cer, syler, toner, chars = _rates(rows)
            name = f"{label} {emotion}"
            if emotion != "neutral":  # against neutral on the same texts
                same = [scored[p] for s, e, p, _ in wavs if s == label and e == "neutral" and p in scored]
                neutral_syler[label + " subset"] = _rates(same[:emotion_texts])[1]
            extra: dict[str, Any] = {}
            if emotion == "neutral":
                neutral_syler[label] = syler
                if label in CHOSEN and peer in neutral_syler:
                    extra = {
                        "target": neutral_syler[peer] + TARGET_SYLER_POINTS,
                        "met": syler <= neutral_syler[peer] + TARGET_SYLER_POINTS,
                    }
            else:
                base = neutral_syler[label + " subset"]
                extra = {"target": base + TARGET_EMOTION_POINTS, "met": syler <= base + TARGET_EMOTION_POINTS}
            figures.append(
                figure(
                    BENCH,
                    f"{name} SylER",
                    syler,
                    "%",
                    n=len(rows),
                    note=f"CER {cer:.1f} %, TonER {toner:.1f} %, {chars} reference characters"
                    + ("" if emotion == "neutral" else f"; neutral on the same texts: SylER {base:.1f} %"),
                    **extra,
                )
            )
    return figures
