"""Each notebook's kernel and executor, started on its first run request.

The kernel of a notebook is shared by everyone in its room. While the
kernel lives, its room is held open (``RoomManager.hold``), so outputs keep
arriving into the document after every browser has closed; when the kernel
is shut down or culled, or the room closes (notebook deleted, server
stopping), the executor is closed and the hold released.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

from jupyter_client.asynchronous.client import AsyncKernelClient
from pycrdt import Map

from crdt.room import Room
from crdt.rooms import RoomManager

from .errors import KernelError, KernelUnavailable, NoSuchKernel
from .execution import KERNEL_STATES, ExecutionSink, Executor, KernelState
from .outputs import NotebookWriter
from .pool import KernelOwner, KernelPool, KernelSpecInfo, ManagedKernel
from .relay import MessageWatcher
from .runs import ClientRequest

log = logging.getLogger(__name__)

DEFAULT_KERNEL = "python3"


# Where a notebook's kernel would start: its working folder and the account it runs as.
Placement = Callable[[], Awaitable[tuple[Path, KernelOwner]]]



RESTARTED = "The server restarted. A new kernel starts when you run a cell."
CULLED = "The kernel was stopped after being idle. A new one starts when you run a cell."


def write_no_kernel(room: Room, message: str) -> None:
    """Show that the notebook has no kernel: status None (the page says "no kernel").

    Runs a previous kernel left queued or running end "aborted". A document
    that never had a kernel is left as it is.
    """
    writer = NotebookWriter(room.notebook, 0.05)
    kernel = room.doc.get("kernel", type=Map).to_py() or {}
    if kernel.get("status") is not None:
        writer.set_kernel({**kernel, "status": None, "message": message, "by": None})
    writer.reset_leftovers()
    writer.close()


class PooledKernel:
    """The :class:`~kernels.execution.KernelHandle` of a notebook's kernel in the pool."""

    def __init__(self, pool: KernelPool, kernel: ManagedKernel) -> None:
        self.pool = pool
        self.kernel = kernel

    @property
    def id(self) -> str:
        return self.kernel.id

    @property
    def kernel_name(self) -> str:
        return self.kernel.kernel_name

    @property
    def client(self) -> AsyncKernelClient:
        return self.kernel.client

    async def is_alive(self) -> bool:
        return await self.kernel.is_alive()

    async def interrupt(self) -> None:
        await self.pool.interrupt(self.kernel.notebook_id)

    async def restart(self) -> None:
        self.kernel = await self.pool.restart(self.kernel.notebook_id)

    async def shutdown(self) -> None:
        await self.pool.shutdown(self.kernel.notebook_id)

    def set_busy(self, busy: bool) -> None:
        self.kernel.set_busy(busy)


@dataclass
class _Session:
    room: Room
    kernel: PooledKernel
    executor: Executor


def kernel_name_of(room: Room) -> str:
    """The kernelspec the notebook's metadata asks for (python3 if none)."""
    meta = room.doc.get("meta", type=Map).to_py() or {}
    spec = (meta.get("metadata") or {}).get("kernelspec") or {}
    name = spec.get("name") if isinstance(spec, dict) else None
    return name if isinstance(name, str) and name else DEFAULT_KERNEL


class NotebookKernels:
    """Run requests, kernel actions and input answers, per notebook.

    ``username`` arguments are the authenticated user (authorization is the
    caller's job: only editors may call these). Use ``async with``; leaving
    closes every executor (the pool, which owns the processes, stops on its own).
    """

    def __init__(
        self,
        pool: KernelPool,
        sink: ExecutionSink,
        rooms: RoomManager,
        max_output_bytes: int = 1024 * 1024,
    ) -> None:
        self.pool = pool
        self.sink = sink
        self.rooms = rooms
        self.max_output_bytes = max_output_bytes
        self._sessions: dict[str, _Session] = {}
        self._starting: dict[str, asyncio.Task[_Session]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unregister: list[Callable[[], None]] = []

    async def __aenter__(self) -> Self:
        self._unregister = [
            self.pool.on_kernel_died(self._kernel_died),
            self.pool.on_kernel_culled(self._kernel_culled),
        ]
        self._unregister.append(self.rooms.on_opened(self._room_opened))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for unregister in self._unregister:
            unregister()
        for task in list(self._starting.values()):
            task.cancel()
        await asyncio.gather(*self._starting.values(), return_exceptions=True)
        for notebook_id in list(self._sessions):
            await self._end(notebook_id)
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- the API ------------------------------------------------------------------------

    async def run(
        self,
        notebook_id: str,
        path: str,
        placement: Placement,
        cell_ids: Sequence[str],
        username: str,
    ) -> list[str]:
        """Queue cells for ``username``, starting the notebook's kernel if needed.

        ``placement`` is awaited only to start a kernel. Returns the execution
        ids. Raises the executor's errors (UnknownCell, NotACodeCell,
        KernelUnavailable) and the pool's (NoSuchKernelSpec,
        KernelLimitReached, KernelStartFailed, ...).
        """
        session = await self._session(notebook_id, path, placement)
        session.executor.notebook_path = path
        return session.executor.run_cells(cell_ids, username)

    async def start(self, notebook_id: str, path: str, placement: Placement) -> dict[str, Any]:
        """Start the notebook's kernel if it has none (without running anything); its status.

        Errors as :meth:`run`'s from the pool. A kernel already running, or
        starting for another request, is the one returned: one per notebook.
        """
        await self._session(notebook_id, path, placement)
        status = self.status(notebook_id)
        assert status is not None
        return status

    def with_kernels(self) -> list[str]:
        """The notebooks that have a kernel now (not those whose kernel is still starting)."""
        return list(self._sessions)

    async def complete(
        self, notebook_id: str, path: str, placement: Placement, code: str, cursor_pos: int
    ) -> dict[str, Any]:
        """The kernel's completions, starting the notebook's kernel if needed (as a run would)."""
        session = await self._session(notebook_id, path, placement)
        return await session.executor.complete(code, cursor_pos)

    async def inspect(
        self,
        notebook_id: str,
        path: str,
        placement: Placement,
        code: str,
        cursor_pos: int,
        detail_level: int,
    ) -> dict[str, Any]:
        """The kernel's help on the name at ``cursor_pos``, starting the kernel if needed."""
        session = await self._session(notebook_id, path, placement)
        return await session.executor.inspect(code, cursor_pos, detail_level)

    async def choose_kernelspec(
        self, notebook_id: str, spec: KernelSpecInfo, username: str
    ) -> None:
        """Make ``spec`` the notebook's kernel for everyone: written into its metadata.

        A running kernel of another kernelspec is shut down (its runs end
        "aborted"); the chosen one starts on the next run. Unchanged if it is
        already the notebook's kernelspec.
        """
        room = await self.rooms.hold(notebook_id, self)
        try:
            meta = room.doc.get("meta", type=Map)
            metadata = meta.get("metadata")
            if not isinstance(metadata, Map):
                metadata = meta["metadata"] = Map({})
            chosen = {"name": spec.name, "display_name": spec.display_name, "language": spec.language}
            if metadata.get("kernelspec") != chosen:
                metadata["kernelspec"] = chosen
            session = self._sessions.get(notebook_id)
            if session is not None and session.kernel.kernel_name != spec.name:
                await session.executor.shutdown(username)
                await self._end(notebook_id)
                write_no_kernel(
                    room,
                    f"{username} chose {spec.display_name}. It starts when you run a cell.",
                )
        finally:
            room.release(self)

    async def interrupt(self, notebook_id: str, username: str) -> None:
        await self._existing(notebook_id).executor.interrupt(username)

    async def restart(self, notebook_id: str, username: str) -> None:
        await self._existing(notebook_id).executor.restart(username)

    async def shutdown(self, notebook_id: str, username: str) -> None:
        """Shut the kernel down for everyone; the next run request starts a new one."""
        session = self._existing(notebook_id)
        await session.executor.shutdown(username)
        await self._end(notebook_id)

    def input_requester(self, notebook_id: str, execution_id: str) -> str:
        """Who ran the execution waiting on ``input()`` (UnknownInputRequest if none)."""
        return self._existing(notebook_id).executor.input_requester(execution_id)

    def answer_input(self, notebook_id: str, execution_id: str, value: str) -> None:
        self._existing(notebook_id).executor.answer_input(execution_id, value)

    def status(self, notebook_id: str) -> dict[str, Any] | None:
        """The kernel of a notebook as the API shows it, or None if it has none."""
        session = self._sessions.get(notebook_id)
        if session is None:
            return None
        kernel = session.kernel.kernel
        return {
            "id": kernel.id,
            "name": kernel.kernel_name,
            "status": session.executor.kernel_status,
            "busy": session.executor.busy,
            "runs_as": kernel.identity.user,
            "network": kernel.network,
        }

    def activity(self, notebook_id: str) -> tuple[float, int] | None:
        """When the notebook's kernel was last used (epoch seconds) and how many kernel
        clients watch it; None if it has no kernel."""
        session = self._sessions.get(notebook_id)
        if session is None:
            return None
        last = time.time() - (time.monotonic() - session.kernel.kernel.last_activity)
        return last, session.executor.connections

    def notebook_of_kernel(self, kernel_id: str) -> str | None:
        """The notebook whose running kernel has id ``kernel_id``, or None."""
        for notebook_id, session in self._sessions.items():
            if session.kernel.id == kernel_id:
                return notebook_id
        return None

    def notebooks_with_kernels(self) -> list[str]:
        """The ids of the notebooks whose kernel is running (started, not shut down)."""
        return list(self._sessions)

    def run_code(
        self, notebook_id: str, code: str, username: str, request: ClientRequest
    ) -> str:
        """Queue code a kernel client sent, as ``username``; see :meth:`Executor.run_code`.

        Raises NoSuchKernel if the notebook has no running kernel.
        """
        return self._existing(notebook_id).executor.run_code(code, username, request)

    def send_request(
        self, notebook_id: str, channel: Literal["shell", "stdin"], msg: dict[str, Any]
    ) -> None:
        """Send a kernel client's request as it is; see :meth:`Executor.send_request`."""
        self._existing(notebook_id).executor.send_request(channel, msg)

    def watch(self, notebook_id: str, watcher: MessageWatcher) -> Callable[[], None]:
        """Relay the kernel's messages ``watcher`` wants; returns the function that stops it.

        The watcher's ``kernel_closed`` is called when the notebook's kernel
        ends. Raises NoSuchKernel if the notebook has no running kernel.
        """
        return self._existing(notebook_id).executor.watch(watcher)

    def states(self) -> dict[KernelState, int]:
        """How many notebooks' kernels are in each state (every state listed, zeros too).

        "starting" counts kernels being started for a first run request;
        the others are the executor's view of the kernel (as in the document).
        """
        counts: dict[KernelState, int] = dict.fromkeys(KERNEL_STATES, 0)
        for session in self._sessions.values():
            counts[session.executor.kernel_status] += 1
        counts["starting"] += sum(1 for n in self._starting if n not in self._sessions)
        return counts

    def relocated(self, notebook_id: str, path: str) -> None:
        """The notebook was renamed: later executions record the new path."""
        session = self._sessions.get(notebook_id)
        if session is not None:
            session.executor.notebook_path = path

    # ---- sessions -----------------------------------------------------------------------

    def _existing(self, notebook_id: str) -> _Session:
        session = self._sessions.get(notebook_id)
        if session is None:
            raise NoSuchKernel(notebook_id)
        return session

    async def _session(self, notebook_id: str, path: str, placement: Placement) -> _Session:
        session = self._sessions.get(notebook_id)
        if session is not None:
            return session
        task = self._starting.get(notebook_id)
        if task is None:
            cwd, owner = await placement()
            # Another request may have started the kernel, or begun to, meanwhile.
            session = self._sessions.get(notebook_id)
            if session is not None:
                return session
            task = self._starting.get(notebook_id)
            if task is None:
                task = asyncio.create_task(self._open(notebook_id, path, cwd, owner))
                self._starting[notebook_id] = task
                task.add_done_callback(lambda _: self._starting.pop(notebook_id, None))
        return await asyncio.shield(task)

    async def _open(self, notebook_id: str, path: str, cwd: Path, owner: KernelOwner) -> _Session:
        room = await self.rooms.hold(notebook_id, self)
        try:
            managed = await self.pool.kernel_for(notebook_id, kernel_name_of(room), owner, cwd)
            kernel = PooledKernel(self.pool, managed)
            executor = Executor(
                room.notebook,
                kernel,
                self.sink,
                notebook_id=notebook_id,
                notebook_path=path,
                max_output_bytes=self.max_output_bytes,
            )
            await executor.start()
        except BaseException:
            room.release(self)
            raise
        session = _Session(room, kernel, executor)
        self._sessions[notebook_id] = session
        room.on_close(self._room_closing)
        log.info("notebook %s: kernel %s started for %s", notebook_id, managed.id, owner.name)
        return session

    async def _end(self, notebook_id: str, shutdown_kernel: bool = True) -> None:
        session = self._sessions.pop(notebook_id, None)
        if session is None:
            return
        try:
            await session.executor.close()
        finally:
            session.room.release(self)
            if shutdown_kernel and self.pool.get(notebook_id) is not None:
                try:
                    await self.pool.shutdown(notebook_id)
                except KernelError:
                    log.exception("notebook %s: shutting its kernel down failed", notebook_id)

    async def _room_opened(self, room: Room) -> None:
        """A room opening without a kernel: runs a previous server left are over."""
        if room.room_id in self._sessions or room.room_id in self._starting:
            return
        write_no_kernel(room, RESTARTED)

    async def _room_closing(self, room: Room) -> None:
        self._spawn(self._room_closed(room))  # ending the kernel does not hold up the close

    async def _room_closed(self, room: Room) -> None:
        session = self._sessions.get(room.room_id)
        if session is not None and session.room is room:
            await self._end(room.room_id)

    async def _kernel_died(self, notebook_id: str, kernel: ManagedKernel) -> None:
        session = self._sessions.get(notebook_id)
        if session is not None:
            session.executor.kernel_died()

    async def _kernel_culled(self, notebook_id: str) -> None:
        session = self._sessions.get(notebook_id)
        await self._end(notebook_id, shutdown_kernel=False)
        if session is not None and not session.room.closing:
            write_no_kernel(session.room, CULLED)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


__all__ = ["KernelUnavailable", "NoSuchKernel", "NotebookKernels", "PooledKernel"]
