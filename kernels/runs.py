"""One notebook's run queue: FIFO across users, one run at a time, no kernel involved.

A :class:`Run` is one cell of one run request (a :class:`Batch`). The
:class:`RunQueue` holds the queued runs, the running one and each cell's
last finished one, and hands runs to the executor's worker in order while
it is not paused (the kernel restarting). Everything runs on one event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from jupyter_client.asynchronous.client import AsyncKernelClient

from .outputs import CellOutputs

FinalStatus = Literal["ok", "error", "interrupted", "aborted"]


@dataclass(eq=False)
class Batch:
    """The cells of one run request; an error stops the rest of them."""


class ClientRequest(Protocol):
    """A kernel client's ``execute_request``: the run of code that has no cell."""

    def send(self, client: AsyncKernelClient) -> str:
        """Send the request as the client made it, on ``client``; return its msg_id."""

    def unanswered(self, run: Run, error_name: str | None, error_value: str | None) -> None:
        """``run`` ended without the kernel's ``execute_reply`` (aborted before it was
        sent, the kernel died, or interrupted before its code started): tell the client."""


@dataclass(eq=False)
class Run:
    """One cell's run: queued, then running, then idle with a final ``status``.

    A run of code sent by a kernel client has no cell (``cell_id`` None) and
    its ``request``, which sends the client's ``execute_request`` as it came.
    """

    id: str
    cell_id: str | None
    code: str
    username: str
    batch: Batch
    queued_at: float
    state: Literal["queued", "running", "idle"] = "queued"
    started_at: float | None = None
    finished_at: float | None = None
    status: FinalStatus | None = None
    msg_id: str | None = None
    outputs: CellOutputs | None = None
    reply: dict[str, Any] | None = None
    idle: bool = False
    output_seen: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    request: ClientRequest | None = None
    replied: bool = False
    """Whether the kernel's ``execute_reply`` came."""

    def entry(self, code: str | None) -> dict[str, Any]:
        """The cell's ``executions`` entry; ``code`` produced the outputs it shows."""
        return {
            "state": self.state,
            "by": self.username,
            "execution_id": self.id,
            "queued_at": self.queued_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "status": self.status,
            "code": code,
        }

    def reply_done(self) -> None:
        """Mark the run done once both its reply and the kernel's idle status came."""
        if self.reply is not None and self.idle:
            self.done.set()


@dataclass
class InputRequest:
    """An ``input()`` the kernel waits on; only ``run.username`` may answer it."""

    run: Run
    prompt: str
    password: bool


class RunQueue:
    """The queued runs (FIFO), the running one, and each cell's last finished one.

    The worker awaits :meth:`next`, then calls :meth:`start` and, when the
    run ends, :meth:`finish`. :meth:`pause` holds :meth:`next` back (queued
    runs stay queued) until :meth:`resume`; a new queue starts paused.
    """

    def __init__(self) -> None:
        self._queue: deque[Run] = deque()
        self.running: Run | None = None
        self._last_finished: dict[str, Run] = {}
        self._queued = asyncio.Event()
        self._ready = asyncio.Event()

    @property
    def busy(self) -> bool:
        """Whether a run is running or queued."""
        return self.running is not None or bool(self._queue)

    @property
    def queued(self) -> list[Run]:
        return list(self._queue)

    def add(self, runs: Iterable[Run]) -> None:
        self._queue.extend(runs)
        self._queued.set()

    def pause(self) -> None:
        self._ready.clear()

    def resume(self) -> None:
        self._ready.set()

    async def next(self) -> Run:
        """The oldest queued run, removed from the queue, once there is one and not paused."""
        while True:
            if self._queue and self._ready.is_set():
                return self._queue.popleft()
            if not self._queue:
                self._queued.clear()
                await self._queued.wait()
            else:
                await self._ready.wait()

    def start(self, run: Run) -> None:
        self.running = run
        run.state = "running"
        run.started_at = time.time()

    def finish(self, run: Run, status: FinalStatus) -> None:
        """End ``run`` with ``status``: it becomes its cell's last finished run."""
        run.state = "idle"
        run.status = status
        run.finished_at = time.time()
        run.done.set()
        if self.running is run:
            self.running = None
        if run.cell_id is not None:
            self._last_finished[run.cell_id] = run

    def drop_batch(self, batch: Batch) -> list[Run]:
        """Remove the queued runs of ``batch`` and return them (to be ended by the caller)."""
        dropped = [run for run in self._queue if run.batch is batch]
        if dropped:
            self._queue = deque(run for run in self._queue if run.batch is not batch)
        return dropped

    def take_all(self) -> list[Run]:
        """Empty the queue; return the running run (if any) and the queued ones, in order."""
        runs = ([self.running] if self.running is not None else []) + list(self._queue)
        self._queue.clear()
        return runs

    def shown(self, cell_id: str) -> Run | None:
        """The run a cell's entry describes: running, else oldest queued, else last finished."""
        if self.running is not None and self.running.cell_id == cell_id:
            return self.running
        queued = next((r for r in self._queue if r.cell_id == cell_id), None)
        return queued or self._last_finished.get(cell_id)


__all__ = ["Batch", "ClientRequest", "FinalStatus", "InputRequest", "Run", "RunQueue"]
