"""A client rejoining a room must never see a cell twice, even for a moment.

Found by the soak (``python -m tests.faults.soak``, seed 9110, and 9008
before it): a client instance in the middle of reconnecting after a server
restart held two copies of one cell, the copy a move had deleted and the
copy it had inserted (``DUPLICATED (transient)``). Anything typed into the
stale copy in that moment is lost when the deletion arrives.

How the server gets there, deterministically:

1. The owner moves a cell (one transaction: delete it, insert a copy; Yjs
   13 has no move) right after reconnecting, so the server receives the
   move *before* the owner's own earlier edits the server lacks (lost in a
   crash, or made offline). The copy depends on them and stays pending in
   the server's document; the deletion applies at once. That transaction
   (T_a) is broadcast: the cell vanishes for everyone connected.
2. The owner's earlier edits arrive (its sync step 2): the copy integrates
   in a second transaction (T_b), broadcast to everyone connected.
3. A client that rejoined between T_a and T_b is sent T_b by ``Room._broadcast``
   (``crdt/room.py``) as soon as it joined, *before* the answer to its sync
   step 1, the only message that would tell it about T_a's deletion: it
   integrates the copy while still holding the original.

The fix (``Room._answered``): a connection gets no document updates until
its sync step 1 is answered; that answer holds every earlier transaction.

Since then the server also never applies an update that would stay pending
(``crdt/updates.py`` ``UpdateShape.missing``): the move of step 1 is held
until the edits it builds on arrive, and both apply together. So nobody sees
the cell vanish in between either; the test checks both.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import websockets
from pycrdt import Array

from crdt import protocol
from tests.interop.node_client import unused_port
from tests.yclient import YClient

from .notebook_ops import make_cell
from .server_process import ServerProcess, prepare_users

NOTEBOOK: dict[str, Any] = {
    "cells": [
        {"cell_type": "markdown", "id": "a", "metadata": {"inc": "a1"}, "source": "A"},
        {"cell_type": "markdown", "id": "x", "metadata": {"inc": "x1"}, "source": "X"},
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def cells(client: YClient) -> list[tuple[str, str]]:
    return [(c["id"], c["metadata"]["inc"]) for c in client.doc.get("cells", type=Array)]


async def join_without_sync_step1(client: YClient, seen: list[list[tuple[str, str]]]) -> None:
    """Open ``client``'s socket and read, but hold back its sync step 1 (as a slow network does).

    Appends the cells it holds after every message it receives to ``seen``.
    """
    handle = client._handle

    def handle_and_record(data: bytes) -> None:
        handle(data)
        seen.append(cells(client))

    client._handle = handle_and_record  # type: ignore[method-assign]
    client.synced.clear()
    client.closed.clear()
    client.ws = await websockets.connect(
        client.url, additional_headers=client.headers, max_size=None, ping_interval=None
    )
    client._reader = asyncio.create_task(client._read())


def record(client: YClient) -> list[list[tuple[str, str]]]:
    """The cells ``client`` holds after every message it receives from now on."""
    seen: list[list[tuple[str, str]]] = []
    handle = client._handle

    def handle_and_record(data: bytes) -> None:
        handle(data)
        seen.append(cells(client))

    client._handle = handle_and_record  # type: ignore[method-assign]
    return seen


def presence_of(client_id: int, state: dict[str, Any]) -> bytes:
    entry = protocol.AwarenessEntry(client_id, 1, json.dumps(state))
    return protocol.awareness_message(protocol.encode_awareness_update([entry]))


async def test_a_client_rejoining_mid_move_never_holds_both_copies(tmp_path: Path) -> None:
    root, data = tmp_path / "notebooks", tmp_path / "data"
    tokens = prepare_users(data, ["alice", "bob", "carol"])
    server = ServerProcess(root, data, unused_port(), tmp_path / "server.log")
    await server.start()
    try:
        created = await server.api(
            "PUT",
            "/api/contents/alice/move.ipynb",
            tokens["alice"],
            {"type": "notebook", "content": NOTEBOOK},
        )
        room_id = created["id"]
        for user in ("bob", "carol"):
            await server.api(
                "POST",
                f"/api/notebooks/{room_id}/shares",
                tokens["alice"],
                {"user": user, "role": "editor"},
            )
        url = f"ws://127.0.0.1:{server.port}/api/rooms/{room_id}"
        owner = YClient(url, tokens["alice"])
        watcher = YClient(url, tokens["bob"])  # connected throughout
        rejoiner = YClient(url, tokens["carol"])
        for client in (owner, watcher, rejoiner):
            await client.connect()
            await client.wait_synced()

        # The owner and the rejoiner lose their connections.
        owner.drop()
        rejoiner.drop()
        await owner.closed.wait()
        await rejoiner.closed.wait()

        # Offline, the owner types, then moves cell x to the top.
        updates: list[bytes] = []
        owner.doc.observe(lambda event: updates.append(event.update))
        ycells = owner.doc.get("cells", type=Array)
        ycells[0]["source"].insert(1, "!")
        with owner.doc.transaction():
            del ycells[1]
            ycells.insert(0, make_cell("x", "markdown", "X", {"inc": "x2"}))
        typed, move = updates

        # It reconnects and the move reaches the server before the typing does.
        async with websockets.connect(
            url, additional_headers={"Authorization": f"token {tokens['alice']}"}
        ) as raw:
            watched = record(watcher)
            await raw.send(protocol.sync_update(move))
            # Presence from the same socket comes after the move: once the watcher has
            # it, the server has handled the move (held it, as it needs the typing).
            await raw.send(presence_of(raw_client_id := 424242, {"barrier": 0}))
            await watcher.wait_for(
                lambda: ((watcher.awareness.get(raw_client_id) or (0, None))[1] or {}).get("barrier") == 0
            )
            assert cells(watcher) == [("a", "a1"), ("x", "x1")]  # nothing applied yet
            seen: list[list[tuple[str, str]]] = []
            await join_without_sync_step1(rejoiner, seen)
            await raw.send(protocol.sync_update(typed))
            await watcher.wait_for(lambda: cells(watcher) == [("x", "x2"), ("a", "a1")])  # T_b
            # Presence is relayed to every connection, in order on each: once the
            # rejoiner has this, it has whatever the server sent it before.
            await watcher.set_presence({"barrier": 1})
            await rejoiner.wait_for(
                lambda: any((s or {}).get("barrier") == 1 for _, s in rejoiner.awareness.values())
            )
            # Before the fix: [('x', 'x2'), ('a', 'a1'), ('x', 'x1')] -- both copies of x.
            assert not [state for state in seen if len(state) != len({i for i, _ in state})]

            await rejoiner.send(protocol.sync_step1(rejoiner.doc.get_state()))
            await rejoiner.wait_for(lambda: cells(rejoiner) == [("x", "x2"), ("a", "a1")])
            assert not [state for state in seen if len(state) != len({i for i, _ in state})]
            # The watcher went straight from before the move to after it.
            assert [("a", "a1")] not in watched
            assert not [state for state in watched if len(state) != len({i for i, _ in state})]
        for client in (owner, watcher, rejoiner):
            client.drop()
    finally:
        await server.stop()
