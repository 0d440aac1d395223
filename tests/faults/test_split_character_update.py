"""An update that splits a character must not make the stored notebook differ from the live one.

Found by the randomized suite while its Python clients still passed string
indices to pycrdt, whose ``Text`` counts UTF-8 bytes (pycrdt 0.14, yrs
0.28): an offset inside a multi-byte character yields an update that the
server accepts, after which yrs encodes the document inconsistently. The
server's live document, the updates it stores (each transaction's
``event.update``, ``crdt/room.py`` ``Room._on_transaction``) and the state
it sends newcomers (``doc.get_update``) no longer agree: collaborators see
different notebooks, and what everyone saw changes at the next restart.

Three inserts by one client are enough: "é" at 0, "😀" at byte 1 (inside
"é"), "😀" at 0. A server must either keep every view consistent or refuse
the update (close the sender's connection with 1007 and change nothing, as
it does for other malformed input). It refuses it: the bad item names its
own position as its right neighbour (``crdt/updates.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


from tests.interop.node_client import unused_port
from tests.yclient import YClient

from .notebook_ops import load_store
from .server_process import ServerProcess, prepare_users

NOTEBOOK: dict[str, Any] = {
    "cells": [
        {
            "cell_type": "markdown",
            "id": "c1",
            "metadata": {},
            "source": "",
        }
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


async def test_an_update_splitting_a_character_leaves_every_view_equal(tmp_path: Path) -> None:
    root, data = tmp_path / "notebooks", tmp_path / "data"
    tokens = prepare_users(data, ["alice", "bob"])
    server = ServerProcess(root, data, unused_port(), tmp_path / "server.log")
    await server.start()
    try:
        created = await server.api(
            "PUT",
            "/api/contents/alice/split.ipynb",
            tokens["alice"],
            {"type": "notebook", "content": NOTEBOOK},
        )
        room_id = created["id"]
        await server.api(
            "POST",
            f"/api/notebooks/{room_id}/shares",
            tokens["alice"],
            {"user": "bob", "role": "editor"},
        )
        url = f"ws://127.0.0.1:{server.port}/api/rooms/{room_id}"
        async with YClient(url, tokens["alice"]) as alice, YClient(url, tokens["bob"]) as bob:
            text = alice.notebook.ycells[0]["source"]
            text.insert(0, "é")
            await bob.wait_for(lambda: bob.sources() == ["é"])
            text.insert(1, "😀")  # byte offset 1: inside "é"
            text.insert(0, "😀")
            text.insert(len(str(text).encode()), "end")  # a later, ordinary edit
            # Either the edits reach bob, or the server refuses them (closes alice).
            try:
                await bob.wait_for(lambda: "end" in bob.sources()[0] or alice.closed.is_set(), 5)
            except TimeoutError:
                pass  # neither: alice's edits silently go nowhere (what happened before)
            refused = alice.closed.is_set() and alice.close_code == 1007
            async with YClient(url, tokens["bob"]) as newcomer:
                stored = load_store(server.store_path, room_id)
                assert stored is not None
                views = {
                    "alice (author)": str(text),
                    "bob (live)": bob.sources()[0],
                    "newcomer": newcomer.sources()[0],
                    "store": stored["cells"][0]["source"],
                }
        await server.kill_and_wait()
        await server.start()
        async with YClient(url, tokens["bob"]) as after_restart:
            views["after restart"] = after_restart.sources()[0]
        if refused:
            del views["alice (author)"]
            assert set(views.values()) == {"é"}, views  # nothing of the bad update was kept
        else:
            # Before: {'alice (author)': '😀é😀end', 'bob (live)': 'é', 'newcomer': '😀é',
            #         'store': 'é', 'after restart': 'é'}
            assert len(set(views.values())) == 1, views
    finally:
        await server.stop()
