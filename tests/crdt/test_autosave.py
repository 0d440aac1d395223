"""The autosaver: one save at a time, in order, within its share of the time."""

from __future__ import annotations

import asyncio
import time

import pytest

from crdt.autosave import Autosaver
from tests.conftest import wait_until


class Saves:
    """Saves that record when they ran and can be held open."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.log: list[tuple[str, float, float]] = []  # (key, started, finished)
        self.running = 0
        self.most_at_once = 0

    def of(self, key: str):  # type: ignore[no-untyped-def]
        async def save() -> None:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            started = time.monotonic()
            await asyncio.sleep(self.seconds)
            self.running -= 1
            self.log.append((key, started, time.monotonic()))

        return save


async def test_saves_run_one_at_a_time_in_order_and_a_repeat_request_is_one_save() -> None:
    saves = Saves(seconds=0.01)
    autosaver = Autosaver(share=1.0)
    await autosaver.start()
    try:
        for key in ["a", "b", "a", "c", "b"]:
            autosaver.request(key, saves.of(key))
        await wait_until(lambda: len(saves.log) == 3)
        assert [key for key, _, _ in saves.log] == ["a", "b", "c"]
        assert saves.most_at_once == 1
        autosaver.request("a", saves.of("a"))  # after its save: saved again
        await wait_until(lambda: len(saves.log) == 4)
    finally:
        await autosaver.stop()


async def test_saves_rest_so_they_keep_to_their_share() -> None:
    saves = Saves(seconds=0.05)
    autosaver = Autosaver(share=0.25)  # rest three times as long as each save took
    await autosaver.start()
    try:
        for key in "abc":
            autosaver.request(key, saves.of(key))
        await wait_until(lambda: len(saves.log) == 3)
    finally:
        await autosaver.stop()
    for (_, _, finished), (_, next_started, _) in zip(saves.log, saves.log[1:]):
        assert next_started - finished >= 3 * 0.05 * 0.9


async def test_stop_finishes_the_running_save_and_drops_the_queue() -> None:
    saves = Saves(seconds=0.2)
    autosaver = Autosaver()
    await autosaver.start()
    autosaver.request("a", saves.of("a"))
    autosaver.request("b", saves.of("b"))
    await wait_until(lambda: saves.running == 1)
    await autosaver.stop()
    assert [key for key, _, _ in saves.log] == ["a"]
    autosaver.request("c", saves.of("c"))  # refused once stopped
    assert autosaver.queued == 0


async def test_a_failing_save_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    saves = Saves()
    autosaver = Autosaver(share=1.0)

    async def broken() -> None:
        raise OSError("disk full")

    await autosaver.start()
    try:
        autosaver.request("bad", broken)
        autosaver.request("good", saves.of("good"))
        await wait_until(lambda: len(saves.log) == 1)
    finally:
        await autosaver.stop()
    assert "autosave of bad failed" in caplog.text
