"""Real Node y-websocket clients (yjs from npm) and Python clients in collab-server rooms.

The Node clients run in one process driven by ``NodeYClients`` (see
``yclient.mjs``); the Python client is ``tests.yclient.YClient``.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import pytest

from tests.conftest import Server
from tests.interop.node_client import NodeYClients
from tests.yclient import YClient

WAIT_MS = 30_000  # generous: the test machine is small and busy
WAIT_S = WAIT_MS / 1000


@pytest.fixture
async def node() -> AsyncIterator[NodeYClients]:
    async with NodeYClients(timeout=WAIT_S + 5) as clients:
        yield clients


def rooms_url(server: Server) -> str:
    """The y-websocket server URL; the room name is the notebook id."""
    return f"ws://127.0.0.1:{server.port}/api/rooms"


async def connect(node: NodeYClients, server: Server, name: str, notebook_id: str) -> int:
    """Connect Node client ``name`` as user ``name``; return its Yjs clientID once synced."""
    return await node.connect(
        name,
        rooms_url(server),
        notebook_id,
        headers={"Authorization": f"token {server.token(name)}"},
        awareness_user={"name": name},
        timeout_ms=WAIT_MS,
    )


def type_at_end(client: YClient, cell: int, text: str) -> None:
    """Type ``text`` one keystroke (one update message) at a time."""
    source = client.notebook.ycells[cell]["source"]
    for char in text:
        source.insert(len(source), char)


def sees_renewal(client: YClient, ids: list[int], renew: int) -> bool:
    """Whether ``client`` sees presence renewal number ``renew`` from every one of ``ids``."""
    return all(client.present().get(i, {}).get("renew") == renew for i in ids)


IDENTITY_FIELDS = {"username", "name", "display_name", "initials", "color", "role"}


def shown_user(state: Any) -> str | None:
    """The user name the server stamped on a presence state (None if it is not stamped)."""
    if not isinstance(state, dict) or not isinstance(state.get("user"), dict):
        return None
    user = state["user"]
    if set(user) != IDENTITY_FIELDS or user["name"] != user["username"]:
        return None
    name: str = user["username"]
    return name


async def test_node_and_python_clients_edit_together(server: Server, node: NodeYClients) -> None:
    notebook_id = await server.create_notebook("alice/together.ipynb", editors=("bob",))
    async with YClient(server.ws_url(notebook_id), server.token("bob")) as bob:
        alice_id = await connect(node, server, "alice", notebook_id)

        # Both type at the start of the first cell without waiting for each other.
        bob.notebook.ycells[0]["source"].insert(0, "# bob\n")
        await node.request("insertText", client="alice", cell=0, index=0, text="# alice\n")
        await node.request("insertCell", client="alice", index=1, source="print('node')")
        await node.request("setCursor", client="alice", cell=0, anchor=1, head=4)
        bob_cursor = {"cell": 0, "anchor": 2, "head": 2}
        await bob.set_presence({"user": {"name": "bob"}, "cursor": bob_cursor})

        await node.wait_for(
            "alice",
            cellCount=2,
            cell=0,
            cellSourceContains="# bob\n",
            awarenessCount=2,
            awarenessMatches={"clientID": bob.doc.client_id, "fields": {"cursor": bob_cursor}},
            timeoutMs=WAIT_MS,
        )
        # Each sees the other under the name they logged in with, stamped by the server.
        bob_seen = (await node.state("alice"))["awareness"][str(bob.doc.client_id)]
        assert shown_user(bob_seen) == "bob"
        assert bob_seen["user"]["role"] == "editor"
        alice_cursor = {"cell": 0, "anchor": 1, "head": 4}
        await bob.wait_for(
            lambda: (
                bob.notebook.cell_number == 2
                and "# alice\n" in bob.sources()[0]
                and bob.present().get(alice_id, {}).get("cursor") == alice_cursor
            ),
            timeout=WAIT_S,
        )
        assert shown_user(bob.present()[alice_id]) == "alice"
        assert bob.present()[alice_id]["user"]["role"] == "owner"

        alice_cells = (await node.state("alice"))["cells"]
        assert [cell["source"] for cell in alice_cells] == bob.sources()
        assert [cell["id"] for cell in alice_cells] == [cell["id"] for cell in bob.cells()]
        assert bob.sources()[0] in ("# alice\n# bob\n", "# bob\n# alice\n")
        assert bob.sources()[1] == "print('node')"


NODE_CLIENTS = 50
ROUNDS = 3


async def test_fifty_node_clients_renewing_presence_at_once(
    server: Server, node: NodeYClients
) -> None:
    names = [f"user{i:02d}" for i in range(NODE_CLIENTS)]
    notebook_id = await server.create_notebook("alice/crowd.ipynb", editors=("typist", *names))

    async def on_every_node_client(**conditions: Any) -> None:
        await asyncio.gather(
            *(node.wait_for(name, timeoutMs=WAIT_MS, **conditions) for name in names)
        )

    async with YClient(server.ws_url(notebook_id), server.token("typist")) as typist:
        await typist.set_presence({"user": {"name": "typist"}, "cursor": {"cell": 0, "anchor": 0}})
        ids = await asyncio.gather(*(connect(node, server, name, notebook_id) for name in names))
        for i, name in enumerate(names):
            await node.request("setCursor", client=name, cell=0, anchor=i, head=i)
        # Each client sends this renewal after its cursor, on the same socket: once everyone
        # sees it from everyone, no earlier presence message is still on its way.
        await node.request("renewAwareness", clients="all")
        await on_every_node_client(
            awarenessCount=NODE_CLIENTS + 1,  # the Node clients (own included) and the typist
            awarenessWith={"fields": {"renew": 1}, "count": NODE_CLIENTS},
        )
        await node.request("resetStats", clients="all")
        typist_seen_before = len(typist.awareness_messages)

        typed = ""
        for renew in range(2, ROUNDS + 2):
            line = f"round {renew}\n"
            type_at_end(typist, 0, line)  # sent while the renewals fly
            typed += line
            await node.request("renewAwareness", clients="all")
            await on_every_node_client(
                awarenessWith={"fields": {"renew": renew}, "count": NODE_CLIENTS}
            )
            await typist.wait_for(partial(sees_renewal, typist, ids, renew), timeout=WAIT_S)
        await on_every_node_client(cell=0, cellSourceContains=typed)

        # Every Node client got each other Node client's renewals once per round, and never
        # its own back; the typist's presence, which every Node client re-sends, did not
        # come back either.
        stats = (await node.request("stats", clients="all"))["stats"]
        for s in stats.values():
            assert (s["echoes"], s["ownIdForeignClock"]) == (0, 0)
            others = {
                str(i): {"distinct": ROUNDS, "duplicates": 0} for i in ids if i != s["clientID"]
            }
            assert s["remote"] == others

        # The typist saw the same: each renewal once, never itself, always with the user
        # that client logged in as.
        all_entries = [entry for message in typist.awareness_messages for entry in message]
        name_of = dict(zip(ids, names, strict=True))
        assert all(
            shown_user(json.loads(entry.state_json)) == name_of[entry.client_id]
            for entry in all_entries
        )
        assert typist.doc.client_id not in {entry.client_id for entry in all_entries}
        renewals = [e for m in typist.awareness_messages[typist_seen_before:] for e in m]
        assert max(Counter((e.client_id, e.clock) for e in renewals).values()) == 1
        assert Counter(e.client_id for e in renewals) == {i: ROUNDS for i in ids}

        for name in names:
            state = await node.state(name)
            assert [cell["source"] for cell in state["cells"]] == typist.sources() == [typed]
            seen = {
                int(i): shown_user(p)
                for i, p in state["awareness"].items()
                if int(i) != state["clientID"]
            }
            assert seen == {
                **{i: n for i, n in name_of.items() if n != name},
                typist.doc.client_id: "typist",
            }


async def test_node_client_reconnecting_does_not_duplicate_content(
    server: Server, node: NodeYClients
) -> None:
    notebook_id = await server.create_notebook("alice/reconnect.ipynb", editors=("bob",))
    async with YClient(server.ws_url(notebook_id), server.token("bob")) as bob:
        alice_id = await connect(node, server, "alice", notebook_id)
        await node.request("insertText", client="alice", cell=0, index=0, text="x = 1\n")
        await bob.wait_for(
            lambda: bob.sources() == ["x = 1\n"] and alice_id in bob.present(), timeout=WAIT_S
        )
        alice_clock, _ = bob.awareness[alice_id]

        await node.request("disconnect", client="alice")
        await bob.wait_for(lambda: alice_id not in bob.present(), timeout=WAIT_S)
        type_at_end(bob, 0, "y = 2\n")
        await node.request("insertText", client="alice", cell=0, index=0, text="# offline\n")

        await connect(node, server, "alice", notebook_id)
        await node.wait_for("alice", cell=0, cellSourceContains="y = 2", timeoutMs=WAIT_MS)
        await bob.wait_for(
            lambda: (
                "# offline" in bob.sources()[0]
                and shown_user(bob.present().get(alice_id)) == "alice"
            ),
            timeout=WAIT_S,
        )
        assert set(bob.present()[alice_id]) == {"user"}
        alice_cells = (await node.state("alice"))["cells"]
        assert (
            [cell["source"] for cell in alice_cells]
            == bob.sources()
            == ["# offline\nx = 1\ny = 2\n"]
        )
        # Alice came back with the presence she re-announced on reconnecting (not a later
        # renewal, which y-websocket sends only every 15 s), and was never told she had left.
        assert bob.awareness[alice_id][0] == alice_clock
        alice_stats = await node.stats("alice")
        assert (alice_stats["echoes"], alice_stats["ownIdForeignClock"]) == (0, 0)
