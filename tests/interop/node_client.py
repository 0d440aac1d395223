"""Drive Node y-websocket clients (``yclient.mjs``) and the reference y-websocket server.

``NodeYClients`` runs one ``node yclient.mjs`` process holding any number of
named Yjs clients; see the top of ``yclient.mjs`` for the command API.
``ReferenceServer`` runs ``@y/websocket-server`` on an unused loopback port.
Both need ``npm ci --prefix tests/interop`` to have been run.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

INTEROP_DIR = Path(__file__).resolve().parent
YCLIENT_SCRIPT = INTEROP_DIR / "yclient.mjs"
REFERENCE_SERVER_SCRIPT = (
    INTEROP_DIR / "node_modules" / "@y" / "websocket-server" / "src" / "server.js"
)

Json = dict[str, Any]


class NodeClientError(RuntimeError):
    """A Node command failed or timed out, or a Node process died.

    ``reply`` is the failed reply (``None`` on a timeout or a dead process);
    the message ends with the tail of the process's stderr.
    """

    def __init__(self, message: str, reply: Json | None = None) -> None:
        super().__init__(message)
        self.reply = reply


def _node_executable() -> str:
    node = shutil.which("node")
    if node is None:
        raise NodeClientError("`node` is not on PATH")
    if not (INTEROP_DIR / "node_modules" / "y-websocket").is_dir():
        raise NodeClientError(f"Node packages missing: run `npm ci --prefix {INTEROP_DIR}`")
    return node


def unused_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free on ``host`` a moment ago."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


async def _keep_tail(stream: asyncio.StreamReader, tail: collections.deque[str]) -> None:
    async for line in stream:
        tail.append(line.decode(errors="replace").rstrip())


class NodeYClients:
    """One ``node yclient.mjs`` process and the named Yjs clients inside it.

    Use as ``async with NodeYClients() as node:``; leaving the block sends
    ``quit`` and ends the process (killing it if it does not exit). Commands
    are awaited by id with ``request``; unsolicited event lines are appended to
    ``events`` and can be awaited with ``wait_event``. ``timeout`` (seconds) is
    the default time to wait for a reply.
    """

    def __init__(self, *, timeout: float = 15.0) -> None:
        self.timeout = timeout
        self.events: list[Json] = []
        self.versions: dict[str, str] = {}
        self._proc: asyncio.subprocess.Process | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Json]] = {}
        self._event_waiters: list[tuple[Callable[[Json], bool], asyncio.Future[Json]]] = []
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        self._proc = await asyncio.create_subprocess_exec(
            _node_executable(),
            str(YCLIENT_SCRIPT),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,  # one line carries a whole notebook's state
        )
        assert self._proc.stdout is not None
        assert self._proc.stderr is not None
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

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Quit the Node process (kill it after 5 s) and stop the readers."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(NodeClientError):
                await self.request("quit", timeout=5)
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def stderr_tail(self) -> str:
        """The last lines the Node process wrote to stderr."""
        return "\n".join(self._stderr_tail)

    def _error(self, message: str, reply: Json | None = None) -> NodeClientError:
        returncode = self._proc.returncode if self._proc is not None else None
        status = "" if returncode is None else f" (node exited with {returncode})"
        return NodeClientError(
            f"{message}{status}\n--- node stderr ---\n{self.stderr_tail()}", reply
        )

    async def request(
        self, cmd: str, /, *, timeout: float | None = None, check: bool = True, **args: Any
    ) -> Json:
        """Send one command and return its reply.

        ``args`` are the command's fields (``client=...``, ``timeoutMs=...``).
        Raises ``NodeClientError`` if the reply is not ok (unless ``check`` is
        false), if no reply comes within ``timeout`` seconds (default: the
        instance's, stretched to cover a ``timeoutMs`` argument), or if the
        process died.
        """
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            raise self._error(f"{cmd}: the Node process is not running")
        if timeout is None:
            timeout = max(self.timeout, args.get("timeoutMs", 0) / 1000 + 5)
        command_id = next(self._ids)
        reply_future: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = reply_future
        try:
            proc.stdin.write(json.dumps({"id": command_id, "cmd": cmd, **args}).encode() + b"\n")
            await proc.stdin.drain()
            reply = await asyncio.wait_for(reply_future, timeout)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise self._error(f"{cmd}: could not write to the Node process") from exc
        except TimeoutError:
            raise self._error(f"{cmd}: no reply within {timeout} s") from None
        finally:
            self._pending.pop(command_id, None)
        if check and not reply.get("ok"):
            raise self._error(f"{cmd} failed: {json.dumps(reply)}", reply)
        return reply

    async def wait_event(
        self, predicate: Callable[[Json], bool], timeout: float | None = None
    ) -> Json:
        """Return the first event, already seen or still to come, matching ``predicate``.

        Raises ``NodeClientError`` after ``timeout`` seconds or if the process dies.
        """
        for event in self.events:
            if predicate(event):
                return event
        future: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        waiter = (predicate, future)
        self._event_waiters.append(waiter)
        try:
            return await asyncio.wait_for(future, self.timeout if timeout is None else timeout)
        except TimeoutError:
            raise self._error("no matching event arrived") from None
        finally:
            with contextlib.suppress(ValueError):
                self._event_waiters.remove(waiter)

    async def _read_stdout(self, stdout: asyncio.StreamReader) -> None:
        try:
            async for raw in stdout:
                try:
                    message: Json = json.loads(raw)
                except json.JSONDecodeError:
                    self._stderr_tail.append(f"(stdout) {raw.decode(errors='replace').rstrip()}")
                    continue
                self._dispatch(message)
            if self._proc is not None:
                await self._proc.wait()
        finally:
            for future in [*self._pending.values(), *(f for _, f in self._event_waiters)]:
                if not future.done():
                    future.set_exception(self._error("the Node process closed its stdout"))

    def _dispatch(self, message: Json) -> None:
        if "event" in message:
            self.events.append(message)
            for predicate, event_future in self._event_waiters:
                if not event_future.done() and predicate(message):
                    event_future.set_result(message)
            return
        reply_future = self._pending.get(message.get("id", -1))
        if reply_future is not None and not reply_future.done():
            reply_future.set_result(message)

    async def connect(
        self,
        client: str,
        url: str,
        room: str,
        *,
        headers: dict[str, str] | None = None,
        awareness_user: Json | None = None,
        timeout_ms: int = 10_000,
    ) -> int:
        """Connect (or reconnect) ``client`` and return its Yjs clientID once synced."""
        args: Json = {"client": client, "url": url, "room": room, "timeoutMs": timeout_ms}
        if headers is not None:
            args["headers"] = headers
        if awareness_user is not None:
            args["awarenessUser"] = awareness_user
        reply = await self.request("connect", **args)
        client_id: int = reply["clientID"]
        return client_id

    async def wait_for(self, client: str, **conditions: Any) -> None:
        """Wait until ``client`` meets every ``waitFor`` condition given."""
        await self.request("waitFor", client=client, **conditions)

    async def state(self, client: str) -> Json:
        """The client's notebook (``cells``, ``meta``) and the awareness states it sees."""
        return await self.request("state", client=client)

    async def stats(self, client: str) -> Json:
        """What ``client`` has seen on the wire (see ``stats`` in yclient.mjs)."""
        stats: Json = (await self.request("stats", client=client))["stats"]
        return stats


class ReferenceServer:
    """The reference y-websocket server (``@y/websocket-server``) on an unused port.

    ``async with ReferenceServer() as server:`` returns once it accepts TCP
    connections; ``server.url`` is its ``ws://`` base URL (the room is the rest
    of the path). It keeps documents in memory only and ignores auth headers.
    """

    def __init__(self, *, host: str = "127.0.0.1", start_timeout: float = 10.0) -> None:
        self.host = host
        self.port = 0
        self.start_timeout = start_timeout
        self._proc: asyncio.subprocess.Process | None = None
        self._output_tail: collections.deque[str] = collections.deque(maxlen=40)
        self._reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def __aenter__(self) -> Self:
        self.port = unused_port(self.host)
        self._proc = await asyncio.create_subprocess_exec(
            _node_executable(),
            str(REFERENCE_SERVER_SCRIPT),
            env={**os.environ, "HOST": self.host, "PORT": str(self.port)},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self._proc.stdout is not None
        self._reader = asyncio.create_task(_keep_tail(self._proc.stdout, self._output_tail))
        try:
            async with asyncio.timeout(self.start_timeout):
                await self._until_accepting()
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, TimeoutError):
                raise NodeClientError(
                    f"reference server did not accept connections within {self.start_timeout} s:\n"
                    + "\n".join(self._output_tail)
                ) from None
            raise
        return self

    async def _until_accepting(self) -> None:
        assert self._proc is not None
        while True:
            if self._proc.returncode is not None:
                raise NodeClientError(
                    f"reference server exited with {self._proc.returncode}:\n"
                    + "\n".join(self._output_tail)
                )
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.02)  # poll interval, bounded by start_timeout
                continue
            writer.close()
            await writer.wait_closed()
            return

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Terminate the server (kill it after 5 s)."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), 5)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
