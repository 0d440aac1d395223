"""Clients for the fault tests: Python pycrdt clients and Node Yjs clients that reconnect.

Both kinds expose the same small interface to the scenario: ``name`` (one
*instance* of a logical client: ``p1-1``, then ``p1-2`` after a crash),
``apply(op)`` (an edit intent, see ``notebook_ops``), ``snapshot()``,
``is_synced()``, ``closes`` (close codes the server sent) and ``terminal``
(a close after which the client stops reconnecting, e.g. 4409).

``PyFaultClient`` wraps ``tests.yclient.YClient`` with the reconnect loop a
y-websocket provider has: after any close it waits (exponential backoff,
capped at ``max_backoff``) and connects again with the same document; on
connect it sends sync step 1 with its state and answers the server's step 1
with everything the server lacks, so edits made offline are uploaded. Close
codes 4400-4499 end the loop, as they end y-websocket's.

``NodeFaultClients`` runs ``fault_client.mjs`` (one Node process, many
clients), each a real ``WebsocketProvider`` that reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path
from typing import Any, Self

import websockets

from tests.interop.node_client import NodeYClients, _keep_tail, _node_executable
from tests.yclient import YClient

from . import notebook_ops

Json = dict[str, Any]

FAULT_CLIENT_SCRIPT = Path(__file__).resolve().parent / "fault_client.mjs"


def is_terminal_close(code: int | None) -> bool:
    """Close codes after which y-websocket clients stop reconnecting."""
    return code is not None and 4400 <= code < 4500


class PyFaultClient:
    """One Python client instance that keeps reconnecting until ``discard``/``stop``."""

    kind = "python"

    def __init__(
        self, name: str, url: str, token: str, rng: random.Random, max_backoff: float = 1.0
    ) -> None:
        self.name = name
        self.client = YClient(url, token)
        self.rng = rng
        self.max_backoff = max_backoff
        self.closes: list[tuple[int | None, str]] = []
        self.terminal: tuple[int, str] | None = None
        self.connects = 0
        self.failed_connects = 0
        self._stopped = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"client-{self.name}")

    async def _run(self) -> None:
        failures = 0
        while not self._stopped:
            try:
                async with asyncio.timeout(5):
                    await self.client.connect()
            except (OSError, EOFError, TimeoutError, websockets.exceptions.WebSocketException):
                self.failed_connects += 1
                failures += 1
                await asyncio.sleep(self._backoff(failures))
                continue
            self.connects += 1
            await self.client.closed.wait()
            if self.client.synced.is_set():
                failures = 0
            code, reason = self.client.close_code, self.client.close_reason
            self.closes.append((code, reason))
            if is_terminal_close(code):
                assert code is not None
                self.terminal = (code, reason)
                return
            failures += 1
            await asyncio.sleep(self._backoff(failures))

    def _backoff(self, failures: int) -> float:
        delay: float = min(self.max_backoff, 0.05 * 2 ** min(failures, 10))
        return delay * self.rng.uniform(0.5, 1.0)

    def is_synced(self) -> bool:
        ws = self.client.ws
        return (
            self.client.synced.is_set()
            and not self.client.closed.is_set()
            and ws is not None
            and ws.state == websockets.protocol.State.OPEN
        )

    async def apply(self, op: Json) -> Json:
        return notebook_ops.apply_op(self.client.doc, op)

    async def snapshot(self, full: bool = False) -> Json:
        return notebook_ops.snapshot(self.client.doc, full)

    async def wait_synced(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not self.is_synced():
                await asyncio.sleep(0.02)  # polls connection state, bounded by the timeout

    async def discard(self) -> None:
        """Crash: cut the connection abruptly and forget the document (a closed tab)."""
        self._stopped = True
        self.client.drop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        reader = self.client._reader
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def stop(self) -> None:
        await self.discard()


class NodeFaultClients(NodeYClients):
    """The ``fault_client.mjs`` process; ``client(name)`` gives one client's handle."""

    async def __aenter__(self) -> Self:
        self._proc = await asyncio.create_subprocess_exec(
            _node_executable(),
            str(FAULT_CLIENT_SCRIPT),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._tasks = [
            asyncio.create_task(self._read_stdout(self._proc.stdout)),
            asyncio.create_task(_keep_tail(self._proc.stderr, self._stderr_tail)),
        ]
        try:
            ready = await self.wait_event(lambda event: event["event"] == "ready")
        except BaseException:
            await self.close()
            raise
        self.versions = ready["versions"]
        return self

    async def new_client(self, name: str, url: str, room: str, token: str) -> NodeFaultClient:
        await self.request(
            "connect", client=name, url=url, room=room, headers={"Authorization": f"token {token}"}
        )
        return NodeFaultClient(self, name)


class NodeFaultClient:
    """One Yjs client inside the Node process (its provider reconnects by itself)."""

    kind = "node"

    def __init__(self, process: NodeFaultClients, name: str) -> None:
        self.process = process
        self.name = name
        self.closes: list[tuple[int | None, str]] = []
        self.terminal: tuple[int, str] | None = None
        self._synced = False

    async def apply(self, op: Json) -> Json:
        result: Json = (await self.process.request("apply", client=self.name, op=op))["result"]
        return result

    async def snapshot(self, full: bool = False) -> Json:
        reply = await self.process.request("snapshot", client=self.name, full=full)
        self.closes = [(c["code"], c["reason"]) for c in reply["closes"]]
        if reply["terminal"] is not None:
            self.terminal = (reply["terminal"]["code"], reply["terminal"]["reason"])
        self._synced = bool(reply["connected"] and reply["synced"])
        state: Json = reply["state"]
        return state

    def is_synced(self) -> bool:
        """As of the last ``snapshot`` or ``wait_synced``."""
        return self._synced

    async def wait_synced(self, timeout: float) -> None:
        reply = await self.process.request(
            "waitSynced", client=self.name, timeoutMs=int(timeout * 1000), check=False
        )
        if not reply.get("ok"):
            raise TimeoutError(f"{self.name} not synced within {timeout} s: {reply}")
        self._synced = True

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.snapshot()  # last close codes
