"""The kill matrix's switch: which call it kills at, once, counted over processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from certrenew.adapters.tracker import NewTicket
from certrenew.adapters.tracker.local import LocalTracker
from certrenew.lab.killpoints import TRACKER_CALLS, Killing, KillPoint, KillSwitch


def test_a_point_names_when_what_and_which_call() -> None:
    assert KillPoint.parse("after:add_comment:ca-requested:2") == KillPoint(
        "after", "add_comment", "ca-requested", 2
    )
    assert str(KillPoint.parse("before:write_file:manifest.json")) == (
        "before:write_file:manifest.json:1"
    )
    with pytest.raises(ValueError, match="before' or 'after"):
        KillPoint.parse("during:write_file:x")


def _comment(path: Path, switch: KillSwitch, key: str, step: str) -> None:
    tracker = Killing(LocalTracker(path), TRACKER_CALLS, switch)
    tracker.add_comment(key, f"done\n\n[certrenew:{step}] per anna")


def _in_child(path: Path, switch: KillSwitch, key: str, step: str) -> int | None:
    process = multiprocessing.get_context("fork").Process(
        target=_comment, args=(path, switch, key, step)
    )
    process.start()
    process.join(60)
    return process.exitcode


def test_the_switch_kills_at_the_nth_matching_call_once_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "tickets.sqlite3"
    key = LocalTracker(path).create_ticket(NewTicket("SIS", "s", "", "label")).key
    switch = KillSwitch(
        [KillPoint.parse("after:add_comment:ca-requested:2")], tmp_path / "state.json"
    )

    assert _in_child(path, switch, key, "ca-chosen") == 0  # does not match
    assert _in_child(path, switch, key, "ca-requested") == 0  # first match
    assert _in_child(path, switch, key, "ca-requested") == -9  # second: killed after it
    assert _in_child(path, switch, key, "ca-requested") == 0  # fired once only
    assert len(LocalTracker(path).comments(key)) == 4  # the killed call's comment landed
    assert switch.load()["fired"] == ["after:add_comment:ca-requested:2"]
