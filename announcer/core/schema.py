"""The announcement's vocabulary: priorities, ids and names (what every front door accepts)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field

PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "emergency")
Priority = Literal["low", "normal", "high", "emergency"]
PRIORITY_RANK = {p: i for i, p in enumerate(PRIORITIES)}

ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
ID_RE = re.compile(ID_PATTERN)  # use fullmatch: "$" also matches before a final newline

SLUG = r"^[a-z0-9_-]+$"
Slug = Annotated[str, Field(pattern=SLUG, min_length=1, max_length=64)]
