"""``announcer send --site A --site B ...`` / ``--all-sites``: one announcement for several sites, from the centre.

The payload goes to the fleet topics at QoS 1 from a short-lived client: ``F/say/<site>`` per
site (``F/say/<site>/<target>`` for exactly one target; several go into the payload's
``targets``), or once to ``F/say`` for every site. The same ``id`` (generated here when not
given) is one announcement per site, each site's spool deduplicating its own copies (a bridge
that flaps may deliver one twice). ``sent_at`` (now, this machine's clock) is added, so that
a site whose link was down lets the announcement expire ``ttl`` after it was sent, not after
it arrived (docs/fleet.md: keep the clocks in sync).

With ``wait``, ``F/sites/+/events`` and every site's state are followed *before* publishing;
for ``--all-sites`` the sites waited for are those the centre knows (their retained status).
Each site is done when its ``rejected`` (or another terminal event without a speaker) came,
or a terminal event for every speaker its ``queued`` event named. Printed: one JSON line per
site that finished or failed (the deciding event: the first speaker that did not finish, else
the last ``finished``, with ``results`` for several speakers), and on stderr one line per site
or speaker that did not finish, with why (``b3/lobby: failed: audio device ... failed``, ``b4: no
outcome within 120s: its link to the centre is down; the centre keeps the announcement until it
is back``).

Exit codes: 0 finished everywhere (or, without ``wait``, published); 1 anything else or a
timeout; 2 the broker cannot be reached or does not acknowledge a publish.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..config import Config
from ..core.announcement import new_id
from ..core.events import TERMINAL
from .fleet import OFFLINE, UNREACHABLE, FleetWatch, SiteState
from .paho_adapter import IncomingMessage, json_bytes
from .topics import FleetTopics

_LOGGER = logging.getLogger(__name__)


@dataclass
class SiteOutcome:
    """The events of the announcement at one site, and whether they are complete."""

    site: str
    speakers: tuple[str, ...] | None = None
    per_speaker: dict[str, dict[str, Any]] = field(default_factory=dict)
    final: dict[str, Any] | None = None  # a terminal event without a speaker (rejected ...)
    queued: bool = False

    def feed(self, event: dict[str, Any]) -> None:
        state, speaker = event.get("state"), event.get("speaker")
        if state == "queued":
            self.queued = True
            if isinstance(event.get("speakers"), list):
                self.speakers = tuple(str(s) for s in event["speakers"])
        elif state == "rejected" and event.get("reason") == "duplicate" and self.queued:
            return  # a second copy (a bridge that flapped resends what it had in flight): the first plays
        elif state in TERMINAL and not speaker:
            self.final = self.final or event
        elif state in TERMINAL and isinstance(speaker, str):
            self.per_speaker.setdefault(speaker, event)  # a duplicate (a bridge flap) changes nothing

    @property
    def done(self) -> bool:
        if self.final is not None:
            return True
        return self.speakers is not None and all(s in self.per_speaker for s in self.speakers)

    def deciding(self) -> tuple[bool, dict[str, Any]]:
        """(finished everywhere, the event to print)."""
        if self.final is not None:
            return self.final.get("state") == "finished", self.final
        events = [self.per_speaker[s] for s in self.speakers or ()]
        bad = [e for e in events if e.get("state") != "finished"]
        out = dict(bad[0] if bad else events[-1])
        out.setdefault("site", self.site)
        if len(events) > 1:
            out["results"] = {str(e.get("speaker")): e.get("state") for e in events}
        return not bad, out

    def problems(self) -> list[str]:
        """``site[/speaker]: state: why`` for everything that did not finish."""
        if self.final is not None:
            return [f"{self.site}: {self.final.get('state')}: {_why(self.final)}"]
        return [
            f"{self.site}/{s}: {e.get('state')}: {_why(e)}"
            for s, e in self.per_speaker.items()
            if e.get("state") != "finished"
        ]


def _why(event: dict[str, Any]) -> str:
    return str(event.get("error") or event.get("reason") or "-")


class _Tracker:
    """Routes ``F/sites/<site>/events`` for our id to each site's ``SiteOutcome``."""

    def __init__(self, topics: FleetTopics, ann_id: str) -> None:
        self.topics = topics
        self.ann_id = ann_id
        self.sites: dict[str, SiteOutcome] = {}
        self.changed = threading.Condition()

    def __call__(self, msg: IncomingMessage) -> None:
        found = self.topics.site_of(msg.topic)
        if found is None or found[1] != "events":
            return
        try:
            event = json.loads(msg.payload)
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(event, dict) or event.get("id") != self.ann_id:
            return
        site = str(event.get("site") or found[0])
        with self.changed:
            self.sites.setdefault(site, SiteOutcome(site)).feed(event)
            self.changed.notify_all()

    def wait(self, expected: list[str], deadline: float) -> None:
        with self.changed:
            while not all(self.sites.get(s, SiteOutcome(s)).done for s in expected):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.changed.wait(left)


def topics_for(watch: FleetWatch, sites: list[str] | None, targets: list[str] | None) -> list[tuple[str, bool]]:
    """``(topic, targets in the payload)`` to publish to."""
    one = targets[0] if targets and len(targets) == 1 else None
    if sites is None:
        return [(watch.topics.say(), bool(targets))]
    return [(watch.topics.say(s, one), bool(targets) and one is None) for s in sites]


def _absent(site: str, state: SiteState | None, outcome: SiteOutcome | None, timeout: float) -> str:
    """Why ``site`` gave no outcome within the wait."""
    base = f"{site}: no outcome within {timeout:g}s"
    if state is None:
        return f"{base}: the centre knows no site {site!r} (no retained status or availability)"
    if state.state == UNREACHABLE:
        return f"{base}: its link to the centre is down; the centre keeps the announcement until it is back"
    if state.state == OFFLINE:
        return f"{base}: its daemon is offline; it plays the announcement when it is back, unless its ttl ran out"
    got = "queued, still waiting or playing" if outcome is not None and outcome.queued else "no event from the site"
    return f"{base} ({got})"


def fleet_send(
    cfg: Config,
    payload: dict[str, Any],
    sites: list[str] | None,
    targets: list[str] | None,
    *,
    wait: bool,
    timeout: float,
    out: TextIO,
    err: TextIO,
) -> int:
    """Publish ``payload`` to ``sites`` (None: every site); see the module doc for waiting and exit codes."""
    body = dict(payload)
    body.setdefault("id", new_id())
    body["sent_at"] = round(time.time(), 3)
    ann_id = str(body["id"])
    topics = FleetTopics.under(cfg.fleet.prefix)
    tracker = _Tracker(topics, ann_id)
    watch = FleetWatch(cfg, extra=[topics.every_site("events")] if wait else [], on_other=tracker)
    deadline = time.monotonic() + timeout
    try:
        if not watch.open(timeout, err):
            return 2
        known = watch.settle(min(timeout, 5.0)) if wait else {}
        expected = list(sites) if sites is not None else list(known)
        if wait and not expected:
            print(f"announcer send: no site publishes under {watch.topics.every_site('status')}", file=err)
            return 1
        for topic, with_targets in topics_for(watch, sites, targets):
            message = dict(body, targets=list(targets or [])) if with_targets else body
            info = watch.link.publish(topic, json_bytes(message), qos=1)
            try:
                info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as exc:
                print(f"announcer send: publishing to {topic} failed: {exc}", file=err)
                return 2
            if not info.is_published():
                print(f"announcer send: {watch.link.broker} did not acknowledge {topic}", file=err)
                return 2
            _LOGGER.info("sent %s to %s", ann_id, topic)
        if not wait:
            return 0
        tracker.wait(expected, deadline)
        states = watch.collector.snapshot()
    finally:
        watch.close()
    code = 0
    for site in expected:
        outcome = tracker.sites.get(site)
        if outcome is None or not outcome.done:
            print(f"announcer send: {_absent(site, states.get(site), outcome, timeout)}", file=err)
            code = 1
            continue
        ok, event = outcome.deciding()
        print(json.dumps(event, ensure_ascii=False), file=out)
        if not ok:
            code = 1
            for line in outcome.problems():
                print(f"announcer send: {line}", file=err)
    return code
