"""Autosaves of every open room, one at a time, within a share of the server's time.

A room asks for a save once its save delay has passed; asking again while it
waits is a no-op, since the save writes whatever the room holds when it runs.
Every change is already durable in the update store, so only the .ipynb file
lags: with a few rooms a save starts at once, with thousands each room is
simply saved less often instead of the saves starving the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Save = Callable[[], Awaitable[None]]


class Autosaver:
    """Runs queued saves in order, one at a time.

    After a save that took ``t`` seconds it rests ``t * (1 - share) / share``,
    so saves take at most ``share`` of the wall clock.
    """

    def __init__(self, share: float = 0.2) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self.share = share
        self._due: dict[str, Save] = {}
        self._wakeup = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def request(self, key: str, save: Save) -> None:
        """Queue ``save`` for ``key`` unless one is already queued."""
        if self._stop.is_set():
            return
        self._due.setdefault(key, save)
        self._wakeup.set()

    def cancel(self, key: str) -> None:
        """Drop ``key``'s queued save (its room saves itself as it closes)."""
        self._due.pop(key, None)

    @property
    def queued(self) -> int:
        return len(self._due)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="autosaver")

    async def stop(self) -> None:
        """Finish the save in progress, if any; queued ones are left to their rooms' close."""
        self._stop.set()
        self._due.clear()
        self._wakeup.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stop.is_set():
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._due and not self._stop.is_set():
                key = next(iter(self._due))
                save = self._due.pop(key)
                started = time.monotonic()
                try:
                    await save()
                except Exception:
                    log.exception("autosave of %s failed", key)
                rest = (time.monotonic() - started) * (1 - self.share) / self.share
                if rest > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), rest)
