"""Presence (Yjs awareness) relayed the way the reference Node server does it.

The room keeps the latest state of every client, applies each incoming
awareness update to it and forwards only the entries that actually changed
(a newer clock). y-websocket clients re-send every awareness change they
receive, so forwarding raw messages would multiply traffic by the number of
clients; those re-sends carry no newer clock and stop here.

Each client id belongs to the connection that first announced it; another
connection cannot overwrite or remove it. When a connection closes, its
client ids are removed and everyone is told.

Who a client is comes from the server, not from the client: the ``user``
field of every state is replaced by the identity the connection was
authenticated as, so nobody can appear under another name or colour.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from .protocol import (
    AwarenessEntry,
    ProtocolError,
    awareness_message,
    decode_awareness_update,
    encode_awareness_update,
    parse_awareness_state,
)


@dataclass(slots=True)
class _ClientPresence:
    clock: int
    state_json: str  # "null" once removed
    owner: object | None  # None once the owning connection has gone
    updated: float = field(default_factory=time.monotonic)


class AwarenessRelay:
    """The awareness state of one room.

    Args:
        max_state_bytes: largest accepted JSON state of one client.
        max_ids_per_connection: how many client ids one connection may own.

    Not thread-safe; used from the room's event loop only.
    """

    def __init__(self, max_state_bytes: int = 64 * 1024, max_ids_per_connection: int = 4) -> None:
        self.max_state_bytes = max_state_bytes
        self.max_ids_per_connection = max_ids_per_connection
        self._clients: dict[int, _ClientPresence] = {}
        self._owned: dict[object, set[int]] = {}

    def apply(
        self, owner: object, payload: bytes, identity: dict[str, Any] | None = None
    ) -> list[AwarenessEntry]:
        """Apply an awareness update sent by ``owner``.

        ``identity``, if given, replaces the ``user`` field of every state the
        update carries. Returns the entries that changed something, to forward
        to the other connections. Raises ProtocolError, having changed
        nothing, if the update is malformed or a state is invalid.
        """
        entries = decode_awareness_update(payload)
        accepted: list[AwarenessEntry] = []
        for entry in entries:
            if self._accepts(owner, entry):
                if not entry.removed:
                    if len(entry.state_json) > self.max_state_bytes:
                        raise ProtocolError("awareness state too large")
                    state = parse_awareness_state(entry.state_json)
                    if identity is not None and state is not None and state.get("user") != identity:
                        state["user"] = identity
                        entry = AwarenessEntry(
                            entry.client_id, entry.clock, json.dumps(state, separators=(",", ":"))
                        )
                accepted.append(entry)
        if not accepted:
            return accepted
        now = time.monotonic()
        owned = self._owned.setdefault(owner, set())
        for entry in accepted:
            if entry.removed:
                owned.discard(entry.client_id)
                self._clients[entry.client_id] = _ClientPresence(entry.clock, "null", None, now)
            else:
                owned.add(entry.client_id)
                self._clients[entry.client_id] = _ClientPresence(
                    entry.clock, entry.state_json, owner, now
                )
        return accepted

    def _accepts(self, owner: object, entry: AwarenessEntry) -> bool:
        current = self._clients.get(entry.client_id)
        if current is None:
            return not entry.removed and self._may_own_another(owner)
        if current.owner is not None and current.owner != owner:
            return False
        if current.owner is None:
            # Gone with its connection: the client may come back with the clock it had.
            if entry.removed or entry.clock < current.clock:
                return False
            return self._may_own_another(owner)
        if entry.clock > current.clock:
            return True
        return entry.clock == current.clock and entry.removed

    def _may_own_another(self, owner: object) -> bool:
        return len(self._owned.get(owner, ())) < self.max_ids_per_connection

    def remove_owner(self, owner: object) -> list[AwarenessEntry]:
        """Remove every client id of a closed connection; returns the removals to send."""
        ids = self._owned.pop(owner, set())
        return self._remove(ids)

    def remove_outdated(self, max_age: float) -> list[AwarenessEntry]:
        """Remove states not renewed for ``max_age`` seconds (clients renew every 15 s)."""
        limit = time.monotonic() - max_age
        stale = {
            cid
            for cid, p in self._clients.items()
            if p.state_json != "null" and p.updated < limit
        }
        for ids in self._owned.values():
            ids -= stale
        return self._remove(stale)

    def _remove(self, ids: set[int]) -> list[AwarenessEntry]:
        removed = []
        now = time.monotonic()
        for cid in ids:
            presence = self._clients.get(cid)
            if presence is None or presence.state_json == "null":
                continue
            self._clients[cid] = _ClientPresence(presence.clock, "null", None, now)
            removed.append(AwarenessEntry(cid, presence.clock, "null"))
        return removed

    def full_message(self) -> bytes | None:
        """The presence of everyone in the room, for a newcomer; None if nobody."""
        entries = [
            AwarenessEntry(cid, p.clock, p.state_json)
            for cid, p in self._clients.items()
            if p.state_json != "null"
        ]
        if not entries:
            return None
        return awareness_message(encode_awareness_update(entries))

    def states(self) -> dict[int, str]:
        """Client id -> JSON state of everyone present."""
        return {cid: p.state_json for cid, p in self._clients.items() if p.state_json != "null"}

    def owner_of(self, client_id: int) -> object | None:
        presence = self._clients.get(client_id)
        return None if presence is None else presence.owner
