"""Kernel messages handed to a kernel client connected through the server (a relay).

A :class:`MessageWatcher` (the Jupyter kernel channels WebSocket) sees the
kernel's messages it ``wants`` (those answering its own requests, and the
kernel's busy/idle status): the executor hands it each such iopub, shell
and stdin message as a
:class:`KernelMessage` whose parts are still packed JSON (iopub frames go on
as they came from the kernel). Everything runs on the executor's event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from jupyter_client.session import Session

from .outputs import IopubMessage

ChannelName = Literal["shell", "iopub", "stdin"]


@dataclass
class KernelMessage:
    """One kernel message: its channel, type, parent msg_id and its packed parts."""

    channel: ChannelName
    msg_type: str
    parent_id: str | None
    parts: Sequence[bytes | memoryview]
    """The header, parent header, metadata and content, each packed JSON."""
    buffers: Sequence[bytes | memoryview]


class MessageWatcher(Protocol):
    """A kernel client of the server; ``deliver`` must not block and not raise."""

    def wants(self, msg_type: str, parent_id: str | None) -> bool:
        """Whether a message of ``msg_type`` answering ``parent_id`` is for this client."""

    def deliver(self, message: KernelMessage) -> None: ...

    def kernel_closed(self) -> None:
        """The notebook's executor closed (kernel shut down or culled, server stopping)."""


def from_iopub(message: IopubMessage) -> KernelMessage:
    wire = message.wire
    return KernelMessage("iopub", message.msg_type, message.parent_id, wire[:4], wire[4:])


def from_reply(session: Session, msg: dict[str, Any]) -> KernelMessage:
    """A shell or stdin message as jupyter_client decoded it (``input_request`` is stdin)."""
    channel: ChannelName = "stdin" if msg["msg_type"] == "input_request" else "shell"
    parts = [
        session.pack(msg["header"]),
        session.pack(msg["parent_header"]),
        session.pack(msg["metadata"]),
        session.pack(msg["content"]),
    ]
    buffers = [bytes(b) for b in msg.get("buffers") or []]
    return KernelMessage(
        channel, msg["msg_type"], msg["parent_header"].get("msg_id"), parts, buffers
    )


__all__ = ["ChannelName", "KernelMessage", "MessageWatcher", "from_iopub", "from_reply"]
