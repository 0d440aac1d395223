"""Spare kernels: started ahead of need, per identity and kernelspec, waiting for a notebook.

:class:`SpareKernels` keeps the ready spares and the ones being started, and
hands one out (:meth:`SpareKernels.claim`). The pool decides when to start
one (its limits) and how (its launcher): the spares only keep count, start
through the function they were given, and stop through the other one.
Everything runs on one event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from .identity import KernelIdentity
from .process import KernelProcess

SpareKey = tuple[KernelIdentity, str, bool]
"""Which notebooks a spare can serve: the account it runs as, its kernelspec name, and
whether it has the network (a spare without is never given to a kernel with, nor back)."""

#: Seconds before a spare that failed to start is tried again.
SPARE_RETRY_AFTER = 30.0

Launch = Callable[[SpareKey], Coroutine[Any, Any, KernelProcess]]
"""Start a kernel process for a spare; may raise at once (no such kernelspec, pool closed)."""
StopLater = Callable[[KernelProcess, str], None]
"""Stop a process in the background (the pool awaits these when it stops); the str names it."""


class SpareKernels:
    """The ready spares and those being started, per :data:`SpareKey`.

    ``accepting`` is False once the pool stops: a spare whose start ends
    after that is stopped instead of kept. Prewarmed spares (started for a
    user who logged in) are the ones :meth:`drop_unusable` stops when old.
    """

    def __init__(self, launch: Launch, stop_later: StopLater, log: logging.Logger) -> None:
        self._launch = launch
        self._stop_later = stop_later
        self._log = log
        self.accepting = True
        self._ready: dict[SpareKey, list[KernelProcess]] = {}
        self._starting: dict[asyncio.Task[KernelProcess], SpareKey] = {}
        self._prewarmed: set[KernelProcess] = set()
        self._failed: dict[SpareKey, float] = {}

    def count(self, key: SpareKey) -> int:
        """Spares of ``key``, ready or being started."""
        starting = sum(1 for k in self._starting.values() if k == key)
        return len(self._ready.get(key, [])) + starting

    @property
    def total(self) -> int:
        """Every spare, ready or being started."""
        return sum(len(s) for s in self._ready.values()) + len(self._starting)

    def ready_count(self, kernel_name: str | None = None) -> int:
        """Ready spares (of ``kernel_name``, or of every kernelspec)."""
        return sum(
            len(spares)
            for (_, name, _), spares in self._ready.items()
            if kernel_name is None or name == kernel_name
        )

    def failed_recently(self, key: SpareKey) -> bool:
        """Whether a spare of ``key`` failed to start less than SPARE_RETRY_AFTER ago."""
        failed = self._failed.get(key, -SPARE_RETRY_AFTER)
        return time.monotonic() - failed < SPARE_RETRY_AFTER

    async def wait(self) -> None:
        """Wait until every spare being started is ready (or failed)."""
        while self._starting:
            await asyncio.gather(*self._starting, return_exceptions=True)

    def claim(self, key: SpareKey) -> KernelProcess | asyncio.Task[KernelProcess] | None:
        """Take a ready spare of this key, else one being started (its task), else None."""
        spares = self._ready.get(key)
        if spares:
            process = spares.pop(0)
            self._prewarmed.discard(process)
            return process
        for task, task_key in self._starting.items():
            if task_key == key:
                del self._starting[task]
                return task
        return None

    def start(self, key: SpareKey, prewarmed: bool) -> None:
        """Start a spare of ``key``; raises what ``launch`` raises at once."""
        kernel_name = key[1]
        task = asyncio.create_task(self._launch(key), name=f"kernel-spare-{kernel_name}")
        self._starting[task] = key

        def done(task: asyncio.Task[KernelProcess]) -> None:
            claimed = self._starting.pop(task, None) is None
            if task.cancelled():
                return
            error = task.exception()
            if error is not None:
                self._failed[key] = time.monotonic()
                if not claimed:
                    self._log.error(
                        "a spare %s kernel failed to start (next try in %.0f s): %s",
                        kernel_name,
                        SPARE_RETRY_AFTER,
                        error,
                    )
                return
            if not claimed:
                process = task.result()
                if self.accepting:
                    self._ready.setdefault(key, []).append(process)
                    if prewarmed:
                        self._prewarmed.add(process)
                else:
                    self._stop_later(process, "kernel-stop-late-spare")

        task.add_done_callback(done)

    def evict_one(self) -> bool:
        """Stop one ready spare, else cancel one being started; False if there is none."""
        victim = next((spares for spares in self._ready.values() if spares), None)
        if victim is not None:
            process = victim.pop()
            self._prewarmed.discard(process)
            self._stop_later(process, "kernel-evict-spare")
            return True
        starting = next(iter(self._starting), None)
        if starting is not None:
            del self._starting[starting]
            starting.cancel()  # its start stops the process it launched
            return True
        return False

    async def drop_unusable(self, now: float, max_age: float) -> None:
        """Stop dead spares, and prewarmed ones older than ``max_age`` (0: never too old)."""
        for spares in list(self._ready.values()):
            for process in list(spares):
                old = max_age and now - process.started > max_age
                dead = await process.exit_code() is not None
                if process in spares and (dead or (old and process in self._prewarmed)):
                    spares.remove(process)
                    self._prewarmed.discard(process)
                    self._stop_later(process, "kernel-stop-spare")

    def cancel_starting(self) -> list[asyncio.Task[KernelProcess]]:
        """Cancel every start in progress; return the tasks (to be awaited)."""
        tasks = list(self._starting)
        for task in tasks:
            task.cancel()
        return tasks

    def take_all(self) -> list[KernelProcess]:
        """Forget every ready spare and return them (to be stopped)."""
        processes = [p for spares in self._ready.values() for p in spares]
        self._ready.clear()
        self._prewarmed.clear()
        return processes


__all__ = ["SPARE_RETRY_AFTER", "Launch", "SpareKernels", "SpareKey", "StopLater"]
