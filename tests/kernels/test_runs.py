"""The run queue alone: FIFO across users, pausing, a request's own cells, what a cell shows.

No kernel: :class:`kernels.runs.RunQueue` only orders runs; the executor
(tests/kernels/test_execution.py) runs them on a real kernel.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from kernels.runs import Batch, Run, RunQueue

pytestmark = pytest.mark.asyncio

TIMEOUT = 10

_ids = itertools.count(1)


def runs(batch: Batch, username: str, *cell_ids: str) -> list[Run]:
    return [Run(f"ex-{next(_ids)}", c, f"# {c}", username, batch, 0.0) for c in cell_ids]


async def still_waiting(task: asyncio.Task[Run]) -> bool:
    """Whether ``task`` is still blocked after the loop ran everything ready to run."""
    for _ in range(20):
        await asyncio.sleep(0)  # a loop pass, not a wait for time to go by
    return not task.done()


async def test_runs_come_out_fifo_across_users_and_requests() -> None:
    queue = RunQueue()
    queue.resume()
    alice, bob = Batch(), Batch()
    first = runs(alice, "alice", "a1", "a2")
    second = runs(bob, "bob", "b1")
    third = runs(alice, "alice", "a3")
    queue.add(first)
    queue.add(second)
    queue.add(third)
    order = []
    async with asyncio.timeout(TIMEOUT):
        while queue.queued:
            run = await queue.next()
            queue.start(run)
            assert queue.running is run and run.state == "running" and run.started_at
            queue.finish(run, "ok")
            order.append((run.username, run.cell_id))
    assert order == [("alice", "a1"), ("alice", "a2"), ("bob", "b1"), ("alice", "a3")]
    assert not queue.busy and queue.running is None


async def test_next_waits_for_a_run_and_while_paused() -> None:
    queue = RunQueue()  # a new queue is paused: the kernel has not answered yet
    waiter = asyncio.create_task(queue.next())
    assert await still_waiting(waiter)
    [run] = runs(Batch(), "alice", "c1")
    queue.add([run])
    assert await still_waiting(waiter)  # queued, but paused
    assert queue.busy and queue.queued == [run]
    queue.resume()
    async with asyncio.timeout(TIMEOUT):
        assert await waiter is run
    assert queue.queued == []

    queue.pause()  # a restart: queued runs stay queued
    [later] = runs(Batch(), "bob", "c2")
    queue.add([later])
    waiter = asyncio.create_task(queue.next())
    assert await still_waiting(waiter)
    queue.resume()
    async with asyncio.timeout(TIMEOUT):
        assert await waiter is later


async def test_dropping_a_batch_leaves_other_requests_queued_in_order() -> None:
    queue = RunQueue()
    mine, theirs = Batch(), Batch()
    queue.add(runs(mine, "alice", "a1"))
    queue.add(runs(theirs, "bob", "b1"))
    queue.add(runs(mine, "alice", "a2", "a3"))
    queue.add(runs(theirs, "bob", "b2"))
    dropped = queue.drop_batch(mine)
    assert [r.cell_id for r in dropped] == ["a1", "a2", "a3"]
    assert [r.cell_id for r in queue.queued] == ["b1", "b2"]
    assert queue.drop_batch(mine) == []


async def test_take_all_returns_the_running_run_then_the_queue() -> None:
    queue = RunQueue()
    queue.resume()
    batch = Batch()
    queue.add(runs(batch, "alice", "c1", "c2", "c3"))
    async with asyncio.timeout(TIMEOUT):
        running = await queue.next()
    queue.start(running)
    taken = queue.take_all()
    assert [r.cell_id for r in taken] == ["c1", "c2", "c3"]
    assert queue.queued == [] and queue.running is running  # ended by the caller
    for run in taken:
        queue.finish(run, "aborted")
    assert not queue.busy
    assert all(run.done.is_set() and run.status == "aborted" for run in taken)


async def test_a_cell_shows_its_running_run_else_its_oldest_queued_else_its_last() -> None:
    queue = RunQueue()
    queue.resume()
    assert queue.shown("c1") is None
    [first] = runs(Batch(), "alice", "c1")
    queue.add([first])
    assert queue.shown("c1") is first
    async with asyncio.timeout(TIMEOUT):
        assert await queue.next() is first
    queue.start(first)
    [second] = runs(Batch(), "bob", "c1")
    [third] = runs(Batch(), "carol", "c1")
    queue.add([second, third])
    assert queue.shown("c1") is first  # running wins
    queue.finish(first, "ok")
    assert queue.shown("c1") is second  # then the oldest queued
    assert [r for r in queue.take_all()] == [second, third]
    queue.finish(second, "aborted")
    queue.finish(third, "aborted")
    assert queue.shown("c1") is third  # then the last finished
    assert third.entry("# c1") == {
        "state": "idle",
        "by": "carol",
        "execution_id": third.id,
        "queued_at": 0.0,
        "started_at": None,
        "finished_at": third.finished_at,
        "status": "aborted",
        "code": "# c1",
    }


async def test_a_run_is_done_once_both_its_reply_and_the_idle_status_came() -> None:
    [run] = runs(Batch(), "alice", "c1")
    run.reply = {"status": "ok"}
    run.reply_done()
    assert not run.done.is_set()
    run.idle = True
    run.reply_done()
    assert run.done.is_set()
