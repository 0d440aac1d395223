"""Whether the server can reach its databases: the answer of ``/health``, for load balancers."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future, ThreadPoolExecutor

from sqlalchemy import Engine, text

log = logging.getLogger(__name__)


class DatabaseHealth:
    """Runs ``SELECT 1`` through each engine, in threads of its own, within a timeout.

    A check that has not answered within ``timeout`` reports "timeout"; while
    it still hangs, later checks of that engine report "timeout" at once
    instead of tying up another thread. ``close()`` lets the threads go
    without waiting for a hung one.

    Args:
        engines: what to check, by the name reported ("database", "store", ...).
        timeout: seconds each check may take.
    """

    def __init__(self, engines: dict[str, Engine], timeout: float = 2.0) -> None:
        self.engines = engines
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(len(engines) or 1, thread_name_prefix="health")
        self._running: dict[str, Future[None]] = {}

    async def check(self) -> dict[str, str]:
        """``{name: "ok" | "unreachable" | "timeout"}`` for every engine, checked at once."""
        names = list(self.engines)
        results = await asyncio.gather(*(self._check(name) for name in names))
        return dict(zip(names, results))

    async def _check(self, name: str) -> str:
        running = self._running.get(name)
        if running is not None and not running.done():
            return "timeout"
        future = self._executor.submit(_select_one, self.engines[name])
        self._running[name] = future
        try:
            await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except TimeoutError:
            log.warning("health: the %s database did not answer within %gs", name, self.timeout)
            return "timeout"
        except Exception as e:
            log.warning("health: the %s database is unreachable: %s", name, e)
            return "unreachable"
        return "ok"

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _select_one(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
