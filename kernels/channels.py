"""Reading a kernel client's iopub, shell and stdin channels, one task each.

:class:`KernelChannels` is the only reader of the client it is attached to.
It decodes iopub messages lazily (:func:`kernels.outputs.decode_iopub`) and
hands every message to the callbacks it was given; the replies to its own
requests (``kernel_info``, ``complete``, ``inspect``) it keeps for
:meth:`KernelChannels.probe` and :meth:`KernelChannels.ask`. Everything runs
on one event loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from typing import Any, Literal

import zmq
from jupyter_client.asynchronous.client import AsyncKernelClient

from .errors import KernelUnavailable
from .outputs import IopubMessage, decode_iopub

log = logging.getLogger(__name__)

OnIopub = Callable[[IopubMessage], None]
OnReply = Callable[[dict[str, Any]], None]
Send = Callable[[AsyncKernelClient], str]
"""Sends one shell request on a client; returns its msg_id."""

# Replies to requests made through probe() and ask(): never handed to on_reply.
OWN_REPLIES = frozenset({"kernel_info_reply", "complete_reply", "inspect_reply"})


class KernelChannels:
    """One kernel client's channels, read into ``on_iopub`` and ``on_reply``.

    ``on_reply`` gets shell and stdin messages (``execute_reply``,
    ``input_request``, ...) but not the replies to :meth:`ask` and :meth:`probe`. A callback that
    raises is logged and reading goes on; a message that cannot be decoded
    is logged and dropped. A closed socket ends its reader (see
    :attr:`readers_ok`). ``attach`` replaces the client (after a restart);
    ``close`` stops the readers and waits for them.
    """

    def __init__(self, name: str, on_iopub: OnIopub, on_reply: OnReply) -> None:
        self.name = name
        """For log messages and task names (the notebook id)."""
        self._on_iopub = on_iopub
        self._on_reply = on_reply
        self.client: AsyncKernelClient | None = None
        self.last_message_at = 0.0
        """The loop time the last message arrived on any channel (or of ``attach``)."""
        self._readers: list[asyncio.Task[None]] = []
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._asked: collections.deque[str] = collections.deque(maxlen=256)

    @property
    def readers_ok(self) -> bool:
        """Whether all three readers are still reading."""
        return bool(self._readers) and not any(task.done() for task in self._readers)

    def attach(self, client: AsyncKernelClient) -> None:
        """Start reading ``client`` (a started ``AsyncKernelClient``), instead of the last one."""
        self.detach()
        self.client = client
        self.last_message_at = asyncio.get_running_loop().time()
        self._readers = [
            self._spawn(self._read_iopub(client), "iopub"),
            self._spawn(self._read_replies(client, "shell"), "shell"),
            self._spawn(self._read_replies(client, "stdin"), "stdin"),
        ]

    def detach(self) -> None:
        """Stop reading (the readers are cancelled, not awaited)."""
        for task in self._readers:
            task.cancel()
        self._readers = []
        self.client = None

    async def close(self) -> None:
        readers = self._readers
        self.detach()
        await asyncio.gather(*readers, return_exceptions=True)

    async def probe(self) -> dict[str, Any]:
        """Ask for kernel_info until the kernel answers; return the reply's content.

        Asks again every second; callers bound the wait. Raises
        KernelUnavailable if no client is attached.
        """
        while True:
            try:
                async with asyncio.timeout(1.0):
                    return await self.ask(lambda client: str(client.kernel_info()))
            except TimeoutError:
                continue

    async def ask(self, send: Send) -> dict[str, Any]:
        """Send one shell request with ``send``; return its reply's content.

        The reply's type must be in ``OWN_REPLIES``. Callers bound the wait
        (a kernel running a cell answers when the cell ends). Raises
        KernelUnavailable if no client is attached.
        """
        client = self.client
        if client is None:
            raise KernelUnavailable("no kernel client")
        msg_id = send(client)
        self._asked.append(msg_id)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = future
        try:
            return await future
        finally:
            self._waiting.pop(msg_id, None)

    def note_asked(self, msg_id: str) -> None:
        """A request sent for someone else that is not a run either (see :meth:`asked`)."""
        self._asked.append(msg_id)

    def asked(self, parent_id: str | None) -> bool:
        """Whether a message answers one of this object's own recent requests (its status
        busy/idle says the kernel was completing a name, not running a cell)."""
        return parent_id is not None and parent_id in self._asked

    # ---- the readers -------------------------------------------------------------------

    async def _read_iopub(self, client: AsyncKernelClient) -> None:
        socket = client.iopub_channel.socket
        loop = asyncio.get_running_loop()
        while socket is not None and not socket.closed:
            try:
                frames = await socket.recv_multipart(copy=False)
            except asyncio.CancelledError:
                if _cancelled():
                    raise
                return  # the client's channels were stopped
            except zmq.ZMQError:
                log.warning("iopub of notebook %s closed", self.name, exc_info=True)
                return
            try:
                message = await decode_iopub(client.session, frames)
            except Exception:
                log.exception("dropping an iopub message of notebook %s", self.name)
                continue
            self.last_message_at = loop.time()
            try:
                self._on_iopub(message)
            except Exception:
                log.exception(
                    "handling iopub %s of notebook %s failed", message.msg_type, self.name
                )

    async def _read_replies(
        self, client: AsyncKernelClient, channel_name: Literal["shell", "stdin"]
    ) -> None:
        channel = client.shell_channel if channel_name == "shell" else client.stdin_channel
        loop = asyncio.get_running_loop()
        while channel.socket is not None and not channel.socket.closed:
            try:
                msg = await channel.get_msg()
            except asyncio.CancelledError:
                if _cancelled():
                    raise
                return
            except zmq.ZMQError:
                log.warning(
                    "%s channel of notebook %s closed", channel_name, self.name, exc_info=True
                )
                return
            except Exception:
                log.exception("dropping a %s message of notebook %s", channel_name, self.name)
                continue
            self.last_message_at = loop.time()
            try:
                self._dispatch(msg)
            except Exception:
                log.exception("handling %s %s failed", channel_name, msg.get("msg_type"))

    def _dispatch(self, msg: dict[str, Any]) -> None:
        future = self._waiting.get(msg["parent_header"].get("msg_id"))
        if msg["msg_type"] in OWN_REPLIES and future is not None:
            if not future.done():
                future.set_result(msg["content"])
            return
        self._on_reply(msg)

    def _spawn(self, coro: Any, channel_name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(
            coro, name=f"executor-{channel_name}-{self.name}"
        )
        task.add_done_callback(_log_failure)
        return task


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s failed", task.get_name(), exc_info=task.exception())


def _cancelled() -> bool:
    """Whether the current task was asked to stop (not just a closed socket's future)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


__all__ = ["OWN_REPLIES", "KernelChannels", "OnIopub", "OnReply", "Send"]
