"""The public corpus of announcement sentences (emotion, priority, text per line).

The shared checkout's copy is preferred; ``tests/data/announcements-zh.tsv`` is a verbatim
copy kept in the repository so a clean clone has it too.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "announcements-zh.tsv"
CANDIDATES: tuple[Path, ...] = (
    Path("/work/shared/corpus") / NAME,
    ROOT.parent / "shared" / "corpus" / NAME,
    ROOT / "tests" / "data" / NAME,
)


def corpus_path() -> Path:
    for path in CANDIDATES:
        if path.is_file():
            return path
    raise FileNotFoundError(f"corpus not found (tried {', '.join(map(str, CANDIDATES))})")


def corpus_rows() -> list[tuple[str, str, str]]:
    """(emotion, priority, text) for every non-comment line."""
    rows = []
    for line in corpus_path().read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            emotion, priority, text = line.split("\t", 2)
            rows.append((emotion, priority, text))
    return rows
