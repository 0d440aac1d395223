"""The transport a room talks to: one connected client."""

from __future__ import annotations

from typing import Any, Protocol


class Connection(Protocol):
    """One client connected to a room, whatever carries its messages.

    ``send`` must not block: it queues the message and, if the client cannot
    keep up, closes the connection itself. ``close`` may be called more than
    once.
    """

    @property
    def username(self) -> str: ...

    @property
    def can_write(self) -> bool:
        """Checked on every document update the client sends; may change while connected."""
        ...

    @property
    def role_name(self) -> str:
        """The client's role as :func:`crdt.protocol.role_message` names it."""
        ...

    @property
    def presence_user(self) -> dict[str, Any] | None:
        """Who the client is, as its presence must show it (None: keep what it sends)."""
        ...

    def send(self, message: bytes) -> None: ...

    def close(self, code: int, reason: str) -> None: ...
