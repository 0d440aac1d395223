"""Hooks: async callbacks registered for one event, each failure logged, never raised."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Unregister = Callable[[], None]


class Hooks(Generic[T]):
    """``register(callback)`` returns its unregister function; ``await run(arg)`` calls all.

    Callbacks are ``async def callback(arg)``, called in the order registered;
    one that raises is logged and the others still run.
    """

    def __init__(self, event: str) -> None:
        self.event = event
        self._callbacks: list[Callable[[T], Awaitable[None]]] = []

    def register(self, callback: Callable[[T], Awaitable[None]]) -> Unregister:
        self._callbacks.append(callback)

        def unregister() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unregister

    async def run(self, arg: T) -> None:
        for callback in list(self._callbacks):
            try:
                await callback(arg)
            except Exception:
                log.exception("a %s hook failed", self.event)
