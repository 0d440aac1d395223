"""Which client updates a room's document applies: now, once the client has synced, or never.

Yjs integrates what it can of an update and keeps the rest pending, invisibly.
A room must never hold a client's update that way: if what it builds on was
refused (edits made while read-only) it never arrives, and every later edit of
that client piles up behind it. So, per connection:

- a read-only client's changes are refused (permission denied), and the
  connection remembered: its copy now differs from the document;
- an update from a client whose own sync step 2 was applied must need nothing
  the document lacks, or it is refused whole (StaleClient, close 4409);
- updates sent before that step 2 (edits made between connecting and hearing
  from the server) wait for what it brings, and must all apply after it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pycrdt import Doc

from . import protocol
from .channel import Connection
from .errors import StaleClient
from .updates import UpdateShape, check_update

EMPTY_UPDATE = b"\x00\x00"  # a Yjs v1 update with no structs and no deletions
MAX_EARLY_UPDATES = 1000
REFUSED = "read-only: your edits are not saved; reload to get the notebook as it is"
STALE = "your copy holds changes the server never got; reload to continue"

Apply = Callable[[Connection, bytes], None]


class Admission:
    """The gate in front of a room's document for its clients' updates.

    ``apply(conn, update)`` integrates an update the gate let through (the room
    does it, so that the change is stored and broadcast as the sender's).
    The room calls :meth:`document_changed` after any change it makes itself.
    """

    def __init__(self, doc: Doc[Any], apply: Apply) -> None:
        self.doc = doc
        self._apply = apply
        self._caught_up: set[Connection] = set()
        self._early: dict[Connection, list[tuple[bytes, UpdateShape]]] = {}
        self._refused: set[Connection] = set()
        self._known: dict[int, int] | None = None  # see state()

    def receive(self, conn: Connection, message: protocol.SyncMessage) -> None:
        """Apply, hold or refuse a client's update or sync step 2.

        Raises StaleClient (nothing applied) or ProtocolError (malformed).
        """
        if not conn.can_write:
            # A read-only client's sync step 2 is empty unless it made changes.
            if message.step == protocol.SyncStep.UPDATE or message.payload != EMPTY_UPDATE:
                self._refused.add(conn)
                conn.send(protocol.permission_denied(REFUSED))
            return
        shape = check_update(message.payload)
        problem = shape.missing(self.state())
        if problem is not None:
            early = self._early.get(conn, [])
            if message.step == protocol.SyncStep.UPDATE and conn not in self._caught_up:
                if len(early) >= MAX_EARLY_UPDATES:
                    raise StaleClient("too many edits sent before syncing; reload to continue")
                self._early[conn] = [*early, (message.payload, shape)]
                return
            raise StaleClient(f"{STALE} ({problem})")
        self._integrate(conn, message.payload, shape)
        if conn in self._early:
            self._apply_early(conn, final=message.step == protocol.SyncStep.STEP2)
        if message.step == protocol.SyncStep.STEP2:
            self._caught_up.add(conn)

    def refused_changes_of(self, conn: Connection) -> bool:
        """Whether ``conn`` made changes while read-only: its copy differs from the document."""
        return conn in self._refused

    def forget(self, conn: Connection) -> None:
        self._caught_up.discard(conn)
        self._early.pop(conn, None)
        self._refused.discard(conn)

    def document_changed(self) -> None:
        """The room changed the document itself: decode the state vector again."""
        self._known = None

    def state(self) -> dict[int, int]:
        """The document's state vector, decoded once and moved on by each client update
        (decoding it for every keystroke costs ~0.4 ms with a few hundred client ids)."""
        if self._known is None:
            self._known = protocol.decode_state_vector(self.doc.get_state())
        return self._known

    def _integrate(self, conn: Connection, update: bytes, shape: UpdateShape) -> None:
        try:
            self._apply(conn, update)
        except BaseException:
            self._known = None
            raise
        if self._known is not None:
            for client, _, end in shape.adds:  # all of it was integrated
                if end > self._known.get(client, 0):
                    self._known[client] = end

    def _apply_early(self, conn: Connection, final: bool) -> None:
        """Apply the held updates of ``conn`` that can be now; after its step 2, all must."""
        held = self._early.pop(conn)
        progress = True
        while held and progress:
            progress = False
            for payload, shape in list(held):
                if shape.missing(self.state()) is None:
                    held.remove((payload, shape))
                    self._integrate(conn, payload, shape)
                    progress = True
        if held and final:
            raise StaleClient(f"{STALE} ({held[0][1].missing(self.state())})")
        if held:
            self._early[conn] = held
