"""Schedules fire exactly once: on time, across restarts, across both DST changes, when missed.

The real parts in one process (tests/routine_stack.py): spool, intake, playback scheduler,
``file`` speakers, the committed bell clip, the history; only the clock is moved by the test
(``ManualClock``, the runner's clock seam). Each announced firing is a WAV file named by its
id on the speaker, so "fired once" is "one file", and the history must say the same.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path

import pytest
from routine_stack import RoutineStack, epoch, routine_yaml

from announcer.config import parse_config
from announcer.schedule.calendar import firings, site_zone

pytestmark = [pytest.mark.unit, pytest.mark.timeout(120)]

BERLIN = "Europe/Berlin"


@pytest.fixture
def make(tmp_path: Path) -> Iterator:
    made: list[RoutineStack] = []

    def build(schedules: str, start: str, zone: str = BERLIN, extra: str = "") -> RoutineStack:
        stack = RoutineStack(tmp_path, routine_yaml(tmp_path, schedules, zone, extra), epoch(start, zone))
        made.append(stack)
        return stack

    yield build
    for s in made:
        s.close()


def utc(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def test_fires_on_time_and_a_restart_never_fires_it_again(make) -> None:
    stack = make("  bell: {at: ['08:00'], clip: bell}", "2025-06-02 07:59:00")
    assert stack.start_runner() == []
    fired = stack.run_until(epoch("2025-06-02 08:00:20"))
    assert fired == [("bell-2025-06-02T0800", epoch("2025-06-02 08:00:00"))]
    # the daemon restarts 30 s after the bell: the firing is in its look-back window, but was announced
    stack.restart()
    assert stack.outcomes == [("bell-2025-06-02T0800", "accepted"), ("bell-2025-06-02T0800", "done")]
    fired = stack.run_until(epoch("2025-06-03 08:00:10"))
    assert fired == [("bell-2025-06-03T0800", epoch("2025-06-03 08:00:00"))]
    assert stack.wavs() == ["bell-2025-06-02T0800", "bell-2025-06-03T0800"]
    records = stack.records(newest_first=False)
    assert [(r["id"], r["source"], r["via"], r["clips"], r["state"]) for r in records] == [
        ("bell-2025-06-02T0800", "schedule", {"schedule": "bell"}, ["bell"], "finished"),
        ("bell-2025-06-03T0800", "schedule", {"schedule": "bell"}, ["bell"], "finished"),
    ]
    assert records[0]["speaker_results"]["lobby"]["state"] == "finished"
    assert not [e for e in stack.events_seen if e.state == "rejected"]  # no duplicate was even attempted


def test_spring_forward_a_skipped_time_fires_once_when_the_clocks_jump(make) -> None:
    # Europe/Berlin, 2025-03-30: 02:00 CET becomes 03:00 CEST, so 02:30 does not exist that night
    stack = make("  night: {at: ['02:30'], clip: bell}", "2025-03-29 00:00:00")
    stack.start_runner()
    fired = stack.run_until(epoch("2025-04-01 00:00:00"), restart_at=epoch("2025-03-30 03:00:40"))
    assert [(i, utc(t)) for i, t in fired] == [
        ("night-2025-03-29T0230", "2025-03-29 01:30:00"),  # 02:30 CET
        ("night-2025-03-30T0230", "2025-03-30 01:00:00"),  # 03:00 CEST: the instant the clocks skip
        ("night-2025-03-31T0230", "2025-03-31 00:30:00"),  # 02:30 CEST
    ]
    assert stack.wavs() == ["night-2025-03-29T0230", "night-2025-03-30T0230", "night-2025-03-31T0230"]
    assert ("night-2025-03-30T0230", "done") in stack.outcomes  # the restart 40 s later saw it, announced already


@pytest.mark.parametrize("missed", ["skip", "{play_within: 10800}"])
def test_fall_back_a_repeated_time_fires_once(make, missed: str) -> None:
    # 2025-10-26: 03:00 CEST becomes 02:00 CET, so 02:30 happens twice (00:30 and 01:30 UTC)
    stack = make(f"  night: {{at: ['02:30'], clip: bell, missed: {missed}}}", "2025-10-25 00:00:00")
    stack.start_runner()
    second_0230 = datetime(2025, 10, 26, 1, 30, 10, tzinfo=timezone.utc).timestamp()
    fired = stack.run_until(epoch("2025-10-28 00:00:00"), restart_at=second_0230)  # restart in the repeated hour
    assert [(i, utc(t)) for i, t in fired] == [
        ("night-2025-10-25T0230", "2025-10-25 00:30:00"),
        ("night-2025-10-26T0230", "2025-10-26 00:30:00"),  # the first 02:30 (CEST); not again at 01:30 UTC
        ("night-2025-10-27T0230", "2025-10-27 01:30:00"),  # 02:30 CET
    ]
    assert stack.wavs() == ["night-2025-10-25T0230", "night-2025-10-26T0230", "night-2025-10-27T0230"]
    if missed != "skip":  # the restart looked back 3 h, found the first 02:30 and knew it had been announced
        assert ("night-2025-10-26T0230", "done") in stack.outcomes


def test_every_quarter_hour_across_both_changes() -> None:
    cfg = parse_config(routine_yaml(Path("/tmp/unused"), "  q: {cron: '*/15 1-3 * * *', clip: bell}"))
    tz = site_zone(BERLIN)
    spring = [f.id[-4:] for f in islice(firings("q", cfg.schedules["q"].timing(), tz, epoch("2025-03-30 00:00")), 8)]
    # 02:00 .. 02:45 do not exist: they ring once, at 03:00, together with 03:00's own firing
    assert spring == ["0100", "0115", "0130", "0145", "0300", "0315", "0330", "0345"]
    fall = list(firings("q", cfg.schedules["q"].timing(), tz, epoch("2025-10-26 00:00"), epoch("2025-10-26 05:00")))
    assert [f.id[-4:] for f in fall] == [f"{h:02d}{m:02d}" for h in (1, 2, 3) for m in (0, 15, 30, 45)]
    assert len({f.id for f in fall}) == len(fall) == 12  # the repeated hour is not repeated


def test_missed_while_down_only_play_within_catches_up(make) -> None:
    stack = make(
        "  skipped: {at: ['08:00'], clip: bell}\n"
        "  caught: {at: ['08:00'], clip: bell, targets: [hall], missed: {play_within: 600}}\n"
        "  too-late: {at: ['07:50'], clip: bell, targets: [hall], missed: {play_within: 600}}",
        "2025-06-02 08:05:00",  # the daemon was down from before 07:50 until now
    )
    # at start each schedule looks back max(60 s, play_within): only "caught" (300 s late, 600 allowed) is owed
    assert [(f.id, outcome) for f, outcome in stack.start_runner()] == [("caught-2025-06-02T0800", "accepted")]
    stack.settle()
    assert stack.wavs("hall") == ["caught-2025-06-02T0800"] and stack.wavs("lobby") == []
    assert {u.schedule: u.firing.id for u in stack.runner.upcoming()} == {
        "skipped": "skipped-2025-06-03T0800",
        "caught": "caught-2025-06-03T0800",
        "too-late": "too-late-2025-06-03T0750",
    }
    # a second restart a minute later does not play the caught one again
    stack.clock.set(epoch("2025-06-02 08:06:00"))
    stack.restart()
    stack.settle()
    assert stack.wavs("hall") == ["caught-2025-06-02T0800"]


def test_a_late_tick_skips_or_plays_within(make, caplog: pytest.LogCaptureFixture) -> None:
    stack = make(
        "  skipped: {at: ['08:00'], clip: bell}\n"
        "  caught: {at: ['08:00'], clip: bell, targets: [hall], missed: {play_within: 600}}",
        "2025-06-02 07:59:00",
    )
    stack.start_runner()
    stack.clock.set(epoch("2025-06-02 08:05:00"))  # the host slept through 08:00 (or the clock was stepped)
    with caplog.at_level(logging.INFO, logger="announcer.schedule.runner"):
        outcomes = {f.id: outcome for f, outcome in stack.runner.tick()}
    assert outcomes == {"skipped-2025-06-02T0800": "missed", "caught-2025-06-02T0800": "accepted"}
    assert "skipped: skipped-2025-06-02T0800 missed by 300 s (missed: skip); not announced" in caplog.text
    assert "caught: announced caught-2025-06-02T0800 (300 s late)" in caplog.text
    stack.settle()
    assert stack.wavs("hall") == ["caught-2025-06-02T0800"] and stack.wavs("lobby") == []


def test_a_host_that_slept_rings_only_the_latest(make, caplog: pytest.LogCaptureFixture) -> None:
    stack = make("  quarter: {cron: '*/15 * * * *', clip: bell, missed: {play_within: 900}}", "2025-06-02 08:59:00")
    stack.start_runner()
    stack.clock.set(epoch("2025-06-02 10:10:00"))  # asleep for 71 minutes: 09:00 .. 10:00 were due
    with caplog.at_level(logging.WARNING, logger="announcer.schedule.runner"):
        done = stack.runner.tick()
    assert [(f.id, o) for f, o in done] == [("quarter-2025-06-02T1000", "accepted")]
    assert "4 firing(s) from quarter-2025-06-02T0900 on missed" in caplog.text


def test_a_paused_schedule_announces_nothing_until_resumed(make) -> None:
    stack = make("  bell: {at: ['08:00', '12:00'], clip: bell}", "2025-06-02 07:00:00")
    stack.start_runner()
    stack.settings.set_schedule_paused("bell", True)
    stack.runner.changed()
    assert [u.paused for u in stack.runner.upcoming()] == [True] and stack.runner.next_unpaused() is None
    assert stack.run_until(epoch("2025-06-02 09:00:00")) == []
    stack.restart()  # the pause is kept in settings.json
    assert stack.settings.paused_schedules == {"bell"}
    stack.settings.set_schedule_paused("bell", False)
    assert [i for i, _ in stack.run_until(epoch("2025-06-02 12:01:00"))] == ["bell-2025-06-02T1200"]


def test_reload_moves_adds_and_removes_schedules_without_retroactive_firings(make) -> None:
    stack = make("  bell: {at: ['08:00'], clip: bell}", "2025-06-02 07:00:00")
    stack.start_runner()
    stack.run_until(epoch("2025-06-02 09:30:00"))
    assert stack.wavs() == ["bell-2025-06-02T0800"]
    # reload at 09:30: bell moves to 10:00; a new schedule at 09:00 (already past today) and one at 11:00
    schedules = [
        "bell: {at: ['10:00'], clip: bell}",
        "early: {at: ['09:00'], clip: bell}",
        "late: {at: ['11:00'], clip: bell}",
    ]
    text = routine_yaml(stack.root, "".join(f"  {s}\n" for s in schedules))
    stack.cfg = parse_config(text)
    stack.runner.wake()
    assert stack.runner.tick() == []
    nexts = {u.schedule: u.firing.id for u in stack.runner.upcoming() if u.firing}
    assert nexts == {
        "bell": "bell-2025-06-02T1000",
        "early": "early-2025-06-03T0900",  # not 09:00 today: a reload never fires what already passed
        "late": "late-2025-06-02T1100",
    }
    fired = [i for i, _ in stack.run_until(epoch("2025-06-02 11:30:00"))]
    assert fired == ["bell-2025-06-02T1000", "late-2025-06-02T1100"]
    stack.cfg = parse_config(routine_yaml(stack.root, "  late: {at: ['11:45'], clip: bell}"))
    assert stack.runner.tick() == [] and [u.schedule for u in stack.runner.upcoming()] == ["late"]


def test_the_thread_fires_when_its_clock_gets_there(make) -> None:
    stack = make("  bell: {at: ['08:00'], clip: bell}", "2025-06-02 07:59:50")
    heard: list[int] = []
    stack.runner.subscribe(lambda: heard.append(1))
    stack.runner.start()
    try:
        time.sleep(0.2)
        assert stack.wavs() == []
        stack.clock.set(epoch("2025-06-02 08:00:00"))  # the sleeping thread wakes on the moved clock
        deadline = time.monotonic() + 10
        while not stack.wavs() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stack.wavs() == ["bell-2025-06-02T0800"]
        assert heard, "listeners (Home Assistant's sensor) hear that the next firing changed"
        assert stack.runner.next_unpaused().id == "bell-2025-06-03T0800"
    finally:
        stack.runner.stop()


class FailingDisk:
    """Stand-in for a spool that cannot commit (a full disk): the intake raises the first ``failures`` times."""

    def __init__(self, real, failures: int) -> None:
        self.real, self.failures = real, failures

    def fire(self, firing, schedule, now):
        if self.failures:
            self.failures -= 1
            raise OSError("database or disk is full")
        return self.real.fire(firing, schedule, now)

    def fired(self, firing_id: str, now: float) -> bool:
        return self.real.fired(firing_id, now)


def test_a_firing_the_spool_cannot_commit_is_tried_again(make, caplog: pytest.LogCaptureFixture) -> None:
    from announcer.intake.scheduled import ScheduledFirings
    from announcer.schedule.runner import RETRY_SECONDS, ScheduleRunner

    stack = make("  bell: {at: ['08:00'], clip: bell}", "2025-06-02 08:00:00")
    runner = ScheduleRunner(lambda: stack.cfg, FailingDisk(ScheduledFirings(stack.intake), 1), clock=stack.clock)
    with caplog.at_level(logging.ERROR, logger="announcer.schedule.runner"):
        assert runner.tick() == []
    assert "cannot announce bell-2025-06-02T0800 now (database or disk is full); trying again" in caplog.text
    assert runner.seconds_to_next() == RETRY_SECONDS  # not a busy loop
    stack.clock.advance(1)
    assert runner.tick() == []  # still waiting
    stack.clock.advance(RETRY_SECONDS)
    assert [(f.id, o) for f, o in runner.tick()] == [("bell-2025-06-02T0800", "accepted")]
    stack.settle()
    assert stack.wavs() == ["bell-2025-06-02T0800"]
