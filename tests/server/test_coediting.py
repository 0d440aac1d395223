"""Co-editing never silently diverges (issue 13 item 1), with real sockets and Yjs clients.

Reproduction: the owner demotes bob while his notebook is open; his edits are
refused but stay in his copy; promoted again, everything he typed next built
on the refused text and the server held it pending for ever: bob's page, the
owner's and the .ipynb each held a different notebook, with no error. Now the
role reaches the socket, a copy holding refused edits must resync (4409), and
no update that would stay pending is ever applied.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import websockets
from pycrdt import Array, Doc, Map, Text

from crdt import protocol
from tests.conftest import Server, wait_until
from tests.yclient import YClient

from .test_roles import saved_sources

TIMEOUT = 10


def side_copy(client: YClient) -> Doc[Any]:
    """A second replica of ``client``'s document under the same client id: edits made
    here are ``client``'s own edits that never left it."""
    copy: Doc[Any] = Doc(client_id=client.doc.client_id)
    copy.apply_update(client.doc.get_update())
    return copy


def edit(doc: Doc[Any], index: int, text: str) -> bytes:
    """Type ``text`` at ``index`` of the first cell; returns the update."""
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(event.update))
    source = doc.get("cells", type=Array)[0]["source"]
    assert isinstance(source, Text)
    source.insert(index, text)
    doc.unobserve(subscription)
    (update,) = updates
    return update


async def test_a_role_change_reaches_the_socket_and_a_copy_holding_refused_edits_resyncs(
    server: Server,
) -> None:
    notebook_id = await server.create_notebook("alice/pair.ipynb", editors=("bob",))
    path = server.services.settings.root_dir / "alice" / "pair.ipynb"
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("alice")) as alice, YClient(url, server.token("bob")) as bob:
        await bob.wait_for(lambda: bob.roles == ["editor"])
        await server.share(notebook_id, "bob", "viewer")
        start = time.monotonic()
        await bob.wait_for(lambda: bob.roles[-1:] == ["viewer"], timeout=5)
        assert time.monotonic() - start < 5
        bob.notebook.ycells[0]["source"].insert(0, "refused ")
        await bob.wait_for(lambda: bool(bob.denied))
        assert "reload" in bob.denied[0]
        alice.notebook.ycells[0]["source"].insert(0, "alice ")
        await bob.wait_for(lambda: "alice " in bob.sources()[0])

        await server.share(notebook_id, "bob", "editor")
        await bob.closed.wait()
        assert bob.close_code == 4409 and "reload" in bob.close_reason
        # Reloaded, bob has the notebook as it is, and may edit.
        async with YClient(url, server.token("bob")) as again:
            assert again.roles == ["editor"]
            assert again.sources() == alice.sources() == ["alice "]
            again.notebook.ycells[0]["source"].insert(6, "and bob")
            await alice.wait_for(lambda: alice.sources() == ["alice and bob"])
        await wait_until(lambda: saved_sources(path) == ["alice and bob"])


async def test_a_promoted_socket_that_made_no_refused_edits_stays_open(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/pair.ipynb", editors=("bob",))
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("alice")) as alice, YClient(url, server.token("bob")) as bob:
        await server.share(notebook_id, "bob", "viewer")
        await bob.wait_for(lambda: bob.roles[-1:] == ["viewer"], timeout=5)
        await server.share(notebook_id, "bob", "editor")
        await bob.wait_for(lambda: bob.roles == ["editor", "viewer", "editor"], timeout=5)
        bob.notebook.ycells[0]["source"].insert(0, "bob again")
        await alice.wait_for(lambda: alice.sources() == ["bob again"])
        assert not bob.closed.is_set() and not bob.denied


async def test_an_edit_building_on_what_the_server_never_got_is_refused_and_changes_nothing(
    server: Server,
) -> None:
    notebook_id = await server.create_notebook("alice/pair.ipynb", editors=("bob",))
    path = server.services.settings.root_dir / "alice" / "pair.ipynb"
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("alice")) as alice, YClient(url, server.token("bob")) as bob:
        alice.notebook.ycells[0]["source"].insert(0, "kept")
        await bob.wait_for(lambda: bob.sources() == ["kept"])
        await wait_until(lambda: saved_sources(path) == ["kept"])
        copy = side_copy(bob)
        edit(copy, 4, " never sent")  # the server never gets this one
        poison = edit(copy, 15, " builds on it")
        await bob.send(protocol.sync_update(poison))
        await bob.closed.wait()
        assert bob.close_code == 4409 and "never got" in bob.close_reason
        # Nothing applied, stored or sent; the room and alice carry on.
        alice.notebook.ycells[0]["source"].insert(4, "!")
        await wait_until(lambda: alice.sources() == ["kept!"])
        async with YClient(url, server.token("alice")) as newcomer:
            assert newcomer.sources() == ["kept!"]
        await wait_until(lambda: saved_sources(path) == ["kept!"])
    async with YClient(url, server.token("alice")) as reopened:
        assert reopened.sources() == ["kept!"]


async def raw_socket(server: Server, notebook_id: str, user: str) -> Any:
    return await websockets.connect(
        server.ws_url(notebook_id),
        additional_headers={"Authorization": f"token {server.token(user)}"},
        max_size=None,
    )


async def test_edits_sent_before_the_clients_sync_step_2_wait_for_what_it_brings(
    server: Server,
) -> None:
    """A client edits offline, reconnects, and types before its sync step 2 goes out:
    the new edit builds on the offline ones and is applied once they arrive."""
    notebook_id = await server.create_notebook("alice/pair.ipynb", editors=("bob",))
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("alice")) as alice, YClient(url, server.token("bob")) as bob:
        copy = side_copy(bob)
        offline = edit(copy, 0, "offline")
        typed = edit(copy, 7, " then typed")
        async with await raw_socket(server, notebook_id, "bob") as raw:
            await raw.send(protocol.sync_step1(b"\x00"))
            await raw.send(protocol.sync_update(typed))  # before its step 2
            await raw.send(protocol.sync_step2(offline))
            await alice.wait_for(lambda: alice.sources() == ["offline then typed"])

        # An early edit whose base never comes, even in the step 2, is refused then.
        copy = side_copy(alice)
        edit(copy, 0, "lost ")
        orphan = edit(copy, 5, "orphan")
        async with await raw_socket(server, notebook_id, "alice") as raw:
            await raw.send(protocol.sync_step1(b"\x00"))
            await raw.send(protocol.sync_update(orphan))
            await raw.send(protocol.sync_step2(b"\x00\x00"))  # nothing: the base never comes
            try:
                async with asyncio.timeout(TIMEOUT):
                    async for _ in raw:
                        pass
            except websockets.ConnectionClosed:
                pass
            assert raw.close_code == 4409
        assert alice.sources() == ["offline then typed"]


async def test_a_rename_reaches_open_documents_as_their_path(server: Server) -> None:
    """Issue 13 item 4: open tabs learn a rename through the document's state map."""
    notebook_id = await server.create_notebook("alice/old.ipynb", editors=("bob",))
    url = server.ws_url(notebook_id)

    def path_of(client: YClient) -> object:
        return client.doc.get("state", type=Map).get("path")

    async with YClient(url, server.token("bob")) as bob:
        await bob.wait_for(lambda: path_of(bob) == "alice/old.ipynb")
        renamed = await server.api(
            "PATCH", "/api/contents/alice/old.ipynb", {"path": "alice/new.ipynb"}
        )
        assert renamed.code == 200
        await bob.wait_for(lambda: path_of(bob) == "alice/new.ipynb")
    await server.services.rooms.unload(notebook_id)
    # Renamed while nobody had it open: the next socket corrects the stored path.
    moved = await server.api("PATCH", "/api/contents/alice/new.ipynb", {"path": "alice/x.ipynb"})
    assert moved.code == 200
    async with YClient(url, server.token("bob")) as bob:
        await bob.wait_for(lambda: path_of(bob) == "alice/x.ipynb")
    assert json.loads(Path(server.services.settings.root_dir / "alice" / "x.ipynb").read_text())
