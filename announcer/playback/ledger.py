"""Who still owes what: per announcement, the speakers that have not reached a terminal state.

Plain data, without threads or locks (the scheduler holds its lock around every call).
When the last speaker of an announcement settles, ``settle`` returns the announcement's
final state: the one state every speaker reached, or ``mixed``. The scheduler then closes
it in the spool, frees its audio and only then ``forget`` s it, so that ``wait_idle``
returns once everything about it is settled.
"""

from __future__ import annotations

from collections.abc import Iterable


class Ledger:
    def __init__(self) -> None:
        self._owed: dict[str, dict[str, str | None]] = {}  # announcement id -> speaker -> terminal state

    def owe(self, ann_id: str, speakers: Iterable[str]) -> None:
        self._owed[ann_id] = {s: None for s in speakers}

    def __contains__(self, ann_id: object) -> bool:
        return ann_id in self._owed

    def __bool__(self) -> bool:
        return bool(self._owed)

    def settle(self, ann_id: str, speaker: str, state: str) -> str | None:
        """Record ``speaker``'s terminal ``state``; the final state once nobody owes it any more, else None."""
        owed = self._owed.get(ann_id)
        if owed is None:
            return None
        owed[speaker] = state
        if any(v is None for v in owed.values()):
            return None
        states = set(owed.values())
        return str(states.pop()) if len(states) == 1 else "mixed"

    def forget(self, ann_id: str) -> None:
        self._owed.pop(ann_id, None)

    def clear(self) -> list[str]:
        """Forget everything owed (a pair member handing its queue back to the spool); the ids."""
        ids = list(self._owed)
        self._owed.clear()
        return ids
