"""Open sockets whose access is checked again whenever access may have changed.

A share revoked, a role lowered, a session ended or a token revoked must
reach sockets that are already open: each change made through this server
asks for a recheck at once, and a cheap poll of the ``auth_epoch`` counter
catches changes made by other processes (the CLI) within ``poll_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol, Self

from sqlalchemy import Engine

from auth.schema import read_epoch

log = logging.getLogger(__name__)


class Reauthorizable(Protocol):
    async def reauthorize(self) -> None:
        """Check access again: close the socket, or change what it may do."""
        ...


class LiveSockets:
    """The sockets to recheck; owns the polling task (``async with``)."""

    def __init__(self, engine: Engine, poll_interval: float = 2.0) -> None:
        self.engine = engine
        self.poll_interval = poll_interval
        self._sockets: set[Reauthorizable] = set()
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, socket: Reauthorizable) -> None:
        self._sockets.add(socket)

    def discard(self, socket: Reauthorizable) -> None:
        self._sockets.discard(socket)

    def recheck_soon(self) -> None:
        """Ask for every socket to be rechecked (coalesced with requests already waiting)."""
        self._wanted.set()

    async def recheck_all(self) -> None:
        for socket in list(self._sockets):
            try:
                await socket.reauthorize()
            except Exception:
                log.exception("rechecking a socket's access failed")

    async def _run(self) -> None:
        epoch = await asyncio.to_thread(self._read_epoch)
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._wanted.wait()
            current = await asyncio.to_thread(self._read_epoch)
            if self._wanted.is_set() or current != epoch:
                self._wanted.clear()
                epoch = current
                await self.recheck_all()

    def _read_epoch(self) -> int:
        with self.engine.begin() as conn:
            return read_epoch(conn)

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
