"""A Python y-websocket client for tests: a pycrdt document synced with a room.

It speaks the protocol the way y-websocket clients do (sync step 1 on open,
answer the server's step 1 with step 2, send every local change as an
update, awareness with a clock), and records what it receives so tests can
assert on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Self

import websockets
from jupyter_ydoc import YNotebook
from pycrdt import Doc, TransactionEvent

from crdt import protocol


class YClient:
    """One client. ``async with YClient(url, token) as c:`` connects and waits for sync."""

    def __init__(
        self,
        url: str,
        token: str | None,
        doc: Doc[Any] | None = None,
        headers: dict[str, str] | None = None,
        **connect_options: Any,
    ) -> None:
        """``connect_options`` go to ``websockets.connect`` (``ssl=``, ``local_addr=``...)."""
        self.url = url
        self.token = token
        self.connect_options = connect_options
        self.headers = dict(headers or {})
        if token is not None:
            self.headers.setdefault("Authorization", f"token {token}")
        self.doc: Doc[Any] = doc if doc is not None else Doc()
        self.notebook = YNotebook(self.doc)
        self.ws: Any = None
        self.synced = asyncio.Event()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason: str = ""
        self.awareness: dict[int, tuple[int, dict[str, Any] | None]] = {}
        self.awareness_messages: list[list[protocol.AwarenessEntry]] = []
        self.denied: list[str] = []
        self.roles: list[str] = []  # every role the server said we have, in order
        self.changed = asyncio.Event()
        self._clock = 0
        self._remote = False
        self._reader: asyncio.Task[None] | None = None
        self._subscription = self.doc.observe(self._on_local_change)

    async def __aenter__(self) -> Self:
        await self.connect()
        await self.wait_synced()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        self.synced.clear()
        self.closed.clear()
        self.close_code = None
        self.ws = await websockets.connect(
            self.url,
            additional_headers=self.headers,
            max_size=None,
            ping_interval=None,
            **self.connect_options,
        )
        self._reader = asyncio.create_task(self._read())
        await self.send(protocol.sync_step1(self.doc.get_state()))

    async def wait_synced(self, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            await self.synced.wait()

    async def send(self, message: bytes) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(message)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def drop(self) -> None:
        """Cut the connection abruptly, as a lost network would."""
        if self.ws is not None:
            self.ws.transport.abort()

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                self._handle(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            if self.ws.close_code is not None:
                self.close_code = self.ws.close_code
                self.close_reason = self.ws.close_reason or ""
            self.closed.set()

    def _handle(self, data: bytes) -> None:
        message = protocol.decode_message(data)
        if isinstance(message, protocol.SyncMessage):
            if message.step == protocol.SyncStep.STEP1:
                reply = protocol.sync_step2(self.doc.get_update(message.payload))
                asyncio.get_running_loop().create_task(self.send(reply))
                return
            self._remote = True
            try:
                self.doc.apply_update(message.payload)
            finally:
                self._remote = False
            if message.step == protocol.SyncStep.STEP2:
                self.synced.set()
        elif isinstance(message, protocol.AwarenessMessage):
            entries = protocol.decode_awareness_update(message.payload)
            self.awareness_messages.append(entries)
            for entry in entries:
                self.awareness[entry.client_id] = (entry.clock, json.loads(entry.state_json))
        elif isinstance(message, protocol.AuthMessage) and message.subtype == 1:
            self.roles.append(str(message.role))
        elif isinstance(message, protocol.AuthMessage):
            self.denied.append(message.reason)
        self.changed.set()

    def _on_local_change(self, event: TransactionEvent) -> None:
        self.changed.set()
        if self._remote or self.ws is None:
            return
        message = protocol.sync_update(event.update)
        asyncio.get_running_loop().create_task(self.send(message))

    async def set_presence(self, state: dict[str, Any] | None) -> None:
        """Send this client's awareness state (None: leaving), with a new clock."""
        self._clock += 1
        entry = protocol.AwarenessEntry(self.doc.client_id, self._clock, json.dumps(state))
        await self.send(protocol.awareness_message(protocol.encode_awareness_update([entry])))

    def present(self) -> dict[int, dict[str, Any]]:
        """The presence of others as this client sees it."""
        return {cid: s for cid, (_, s) in self.awareness.items() if s is not None}

    async def wait_for(self, predicate: Any, timeout: float = 10) -> None:
        """Wait until ``predicate()`` is true, re-checking after every message received."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                if predicate():
                    return
                await self.changed.wait()

    def cells(self) -> list[dict[str, Any]]:
        return [self.notebook.get_cell(i) for i in range(self.notebook.cell_number)]

    def sources(self) -> list[str]:
        return [str(c["source"]) for c in self.cells()]
