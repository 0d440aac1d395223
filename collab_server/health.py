"""Whether the server can reach its databases: the answer of ``/health``, for load balancers."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine, text

log = logging.getLogger(__name__)


class DatabaseHealth:
    """Runs ``SELECT 1`` through each engine, in threads of its own, within a timeout.

    Checks asked for while one is running share it (two load balancers
    probing at once get one query). A check that has not answered within
    ``timeout`` of its start reports "timeout"; while it still hangs, later
    checks of that engine report "timeout" too instead of tying up another
    thread. ``close()`` lets the threads go without waiting for a hung one.
    Call ``check`` from one event loop.

    Args:
        engines: what to check, by the name reported ("database", "store", ...).
        timeout: seconds each check may take.
    """

    def __init__(self, engines: dict[str, Engine], timeout: float = 2.0) -> None:
        self.engines = engines
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(len(engines) or 1, thread_name_prefix="health")
        # name -> (the check running or last run, loop.time() it started)
        self._checks: dict[str, tuple[asyncio.Future[None], float]] = {}

    async def check(self) -> dict[str, str]:
        """``{name: "ok" | "unreachable" | "timeout"}`` for every engine, checked at once."""
        names = list(self.engines)
        results = await asyncio.gather(*(self._check(name) for name in names))
        return dict(zip(names, results))

    async def _check(self, name: str) -> str:
        loop = asyncio.get_running_loop()
        last = self._checks.get(name)
        if last is None or last[0].done():
            future = asyncio.wrap_future(self._executor.submit(_select_one, self.engines[name]))
            future.add_done_callback(_retrieve)
            last = self._checks[name] = (future, loop.time())
        future, started = last
        try:
            remaining = max(0.0, started + self.timeout - loop.time())
            await asyncio.wait_for(asyncio.shield(future), remaining)
        except TimeoutError:
            log.warning("health: the %s database did not answer within %gs", name, self.timeout)
            return "timeout"
        except Exception as e:
            log.warning("health: the %s database is unreachable: %s", name, e)
            return "unreachable"
        return "ok"

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark the error of a check nobody awaits any more as seen (the next check runs anew)."""
    if not future.cancelled():
        future.exception()


def _select_one(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
