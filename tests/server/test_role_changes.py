"""A role changed while the notebook is open reaches the client, and no client's
update is ever kept pending by the server without that client being told to resync."""

from __future__ import annotations

import asyncio
from typing import Any

import websockets
from pycrdt import Array, Doc

from crdt import protocol
from tests.conftest import Server, wait_until
from tests.yclient import YClient

from .test_roles import saved_sources


def room_sources(server: Server, notebook_id: str) -> list[str]:
    room = server.services.rooms.get(notebook_id)
    assert room is not None
    return [str(cell["source"]) for cell in room.notebook.get()["cells"]]


def copy_of(doc: Doc[Any]) -> Doc[Any]:
    copy: Doc[Any] = Doc()
    copy.apply_update(doc.get_update())
    return copy


def recorded(doc: Doc[Any]) -> list[bytes]:
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    return updates


async def test_demoted_then_promoted_editor_is_told_and_must_resync(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/pair.ipynb", editors=("bob", "carol"))
    path = server.services.settings.root_dir / "alice" / "pair.ipynb"
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("carol")) as carol, YClient(url, server.token("bob")) as bob:
        assert bob.roles == ["editor"]  # told on join
        bob.notebook.ycells[0]["source"].insert(0, "bob = 1\n")
        await carol.wait_for(lambda: carol.sources() == ["bob = 1\n"])

        await server.share(notebook_id, "bob", "viewer")
        await bob.wait_for(lambda: bob.roles[-1:] == ["viewer"], timeout=5)
        bob.notebook.ycells[0]["source"].insert(0, "REFUSED ")
        await bob.wait_for(lambda: bool(bob.denied))
        carol.notebook.ycells[0]["source"].insert(len("bob = 1\n"), "carol = 2\n")
        await bob.wait_for(lambda: "carol = 2" in bob.sources()[0])

        await server.share(notebook_id, "bob", "editor")
        async with asyncio.timeout(5):
            await bob.closed.wait()
        assert bob.close_code == 4409 and "reload" in bob.close_reason
        assert bob.roles[-1] == "editor"

        # carol was never disturbed and keeps editing.
        carol.notebook.ycells[0]["source"].insert(0, "# carol\n")
        expected = ["# carol\nbob = 1\ncarol = 2\n"]
        await wait_until(lambda: room_sources(server, notebook_id) == expected)
        assert carol.closed.is_set() is False and carol.sources() == expected
        async with YClient(url, server.token("bob")) as fresh:
            assert fresh.sources() == expected == room_sources(server, notebook_id)
            assert fresh.roles == ["editor"]
        await wait_until(lambda: saved_sources(path) == expected)
    assert "REFUSED" not in path.read_text()


async def test_an_update_with_a_gap_from_a_synced_client_is_refused_and_changes_nothing(
    server: Server,
) -> None:
    notebook_id = await server.create_notebook("alice/gap.ipynb", editors=("bob", "carol"))
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("carol")) as carol, YClient(url, server.token("bob")) as bob:
        carol.notebook.ycells[0]["source"].insert(0, "x = 1\n")
        await bob.wait_for(lambda: bob.sources() == ["x = 1\n"])
        forged = copy_of(bob.doc)
        updates = recorded(forged)
        text = forged.get("cells", type=Array)[0]["source"]
        text.insert(0, "never sent ")
        text.insert(0, "GAP ")  # follows the item the server never got
        await bob.send(protocol.sync_update(updates[1]))
        async with asyncio.timeout(5):
            await bob.closed.wait()
        assert bob.close_code == 4409 and "never received" in bob.close_reason
        # Nothing was applied; carol and the room go on.
        assert room_sources(server, notebook_id) == ["x = 1\n"]
        carol.notebook.ycells[0]["source"].insert(0, "y = 2\n")
        async with YClient(url, server.token("bob")) as fresh:
            await fresh.wait_for(lambda: fresh.sources() == ["y = 2\nx = 1\n"])
        assert carol.sources() == ["y = 2\nx = 1\n"] and not carol.closed.is_set()


async def raw_join(url: str, token: str, doc: Doc[Any], early: list[bytes]) -> Any:
    """Open a socket, send sync step 1 and then ``early`` updates before anything is read."""
    ws = await websockets.connect(url, additional_headers={"Authorization": f"token {token}"})
    await ws.send(protocol.sync_step1(doc.get_state()))
    for update in early:
        await ws.send(protocol.sync_update(update))
    return ws


async def server_step1(ws: Any) -> bytes:
    """Read messages until the server's sync step 1; return its state vector."""
    async with asyncio.timeout(10):
        while True:
            message = protocol.decode_message(await ws.recv())
            if isinstance(message, protocol.SyncMessage) and message.step == protocol.SyncStep.STEP1:
                return message.payload


async def test_edits_made_before_the_step_2_are_kept_once_it_brings_what_they_follow(
    server: Server,
) -> None:
    notebook_id = await server.create_notebook("alice/early.ipynb", editors=("bob", "carol"))
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("carol")) as carol:
        offline = copy_of(carol.doc)
        text = offline.get("cells", type=Array)[0]["source"]
        text.insert(0, "offline ")  # made while disconnected: only the step 2 brings it
        updates = recorded(offline)
        text.insert(len("offline "), "typed ")  # typed as the socket opened
        ws = await raw_join(url, server.token("bob"), offline, updates)
        state = await server_step1(ws)
        await ws.send(protocol.sync_step2(offline.get_update(state)))
        await carol.wait_for(lambda: carol.sources() == ["offline typed "])
        assert ws.close_code is None
        await ws.close()

        # The same, but the step 2 does not bring what the early edit followed.
        other = copy_of(carol.doc)
        text = other.get("cells", type=Array)[0]["source"]
        text.insert(0, "lost ")
        updates = recorded(other)
        text.insert(0, "orphan ")
        ws = await raw_join(url, server.token("bob"), other, updates)
        await server_step1(ws)
        await ws.send(protocol.sync_step2(b"\x00\x00"))
        async with asyncio.timeout(5):
            await ws.wait_closed()
        assert ws.close_code == 4409 and "never received" in ws.close_reason
        assert room_sources(server, notebook_id) == ["offline typed "]
