"""Clients editing one notebook together through a real server converge."""

from __future__ import annotations

import asyncio
import json
import random
import re
from typing import Any

import nbformat
from pycrdt import Map, Text

from tests.conftest import Server
from tests.yclient import YClient


def new_cell(cell_id: str, source: str) -> Map[Any]:
    return Map(
        {
            "id": cell_id,
            "cell_type": "code",
            "source": Text(source),
            "metadata": Map(),
            "outputs": [],
            "execution_count": None,
        }
    )


def random_edit(client: YClient, rng: random.Random, tag: str, n: int) -> None:
    """One random edit: text in the first cell, or insert / delete / move a cell."""
    cells = client.notebook.ycells
    kind = rng.choice(["text", "text", "text", "insert", "delete", "move"])
    if kind == "text" or len(cells) < 2:
        source = cells[0]["source"]
        if rng.random() < 0.7 or len(source) == 0:
            source.insert(rng.randint(0, len(source)), f"{tag}{n} ")
        else:
            start = rng.randrange(len(source))
            del source[start : min(len(source), start + rng.randint(1, 4))]
    elif kind == "insert":
        cells.insert(rng.randint(1, len(cells)), new_cell(f"{tag}-{n}", f"# {tag} {n}\n"))
    elif kind == "delete":
        del cells[rng.randint(1, len(cells) - 1)]
    else:  # move, as y-websocket clients do it: delete and re-insert a copy
        index = rng.randint(1, len(cells) - 1)
        cell = cells[index].to_py()
        assert cell is not None
        del cells[index]
        moved = new_cell(str(cell["id"]), str(cell["source"]))
        cells.insert(rng.randint(1, len(cells)), moved)


def notebook_json(client: YClient) -> dict[str, Any]:
    return json.loads(json.dumps(client.notebook.get()))


IDENTITY_FIELDS = {"username", "name", "display_name", "initials", "color", "role"}


def shown_as(client: YClient, client_id: int, username: str, role: str) -> dict[str, Any]:
    """The presence ``client`` sees for ``client_id``, after checking the server stamped
    it with ``username`` and ``role``; returns the state without its ``user`` field."""
    state = dict(client.present()[client_id])
    user = state.pop("user")
    assert set(user) == IDENTITY_FIELDS, user
    assert (user["username"], user["name"], user["role"]) == (username, username, role), user
    assert user["initials"] == username[0].upper()
    assert re.fullmatch(r"#[0-9a-f]{6}", user["color"]), user
    return state


async def test_two_clients_converge_after_random_concurrent_edits(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/pair.ipynb")
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("alice")) as alice, YClient(url, server.token("bob")) as bob:
        rng_a, rng_b = random.Random(1), random.Random(2)
        for n in range(200):
            random_edit(alice, rng_a, "a", n)
            random_edit(bob, rng_b, "b", n)
            if n % 20 == 0:
                await asyncio.sleep(0)  # let some messages cross mid-way
        await alice.wait_for(lambda: notebook_json(alice) == notebook_json(bob), timeout=20)
        await bob.wait_for(lambda: notebook_json(alice) == notebook_json(bob), timeout=20)
        final = notebook_json(alice)
        assert "a199" in final["cells"][0]["source"] or "b199" in final["cells"][0]["source"]

        async with YClient(url, server.token("carol")) as carol:
            assert notebook_json(carol) == final

    room = server.services.rooms.get(notebook_id)
    assert room is not None
    path = server.services.settings.root_dir / "alice" / "pair.ipynb"

    def saved() -> dict[str, Any]:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        return json.loads(json.dumps(nb))

    async with asyncio.timeout(10):
        while saved()["cells"] != final["cells"]:
            await asyncio.sleep(0.05)
    ids = [c["id"] for c in saved()["cells"]]
    assert len(ids) == len(set(ids))


async def test_hundred_clients_opening_a_fresh_room_at_once_all_sync(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/crowd.ipynb", None)
    url = server.ws_url(notebook_id)
    token = server.token("alice")
    clients = [YClient(url, token) for _ in range(100)]
    await asyncio.gather(*(c.connect() for c in clients))
    await asyncio.gather(*(c.wait_synced(timeout=30) for c in clients))
    try:
        expected = notebook_json(clients[0])
        assert expected["cells"], "a new notebook has one empty cell"
        assert all(notebook_json(c) == expected for c in clients)
        # and they are live: an edit by the last one reaches the first
        clients[-1].notebook.ycells[0]["source"].insert(0, "hello")
        await clients[0].wait_for(lambda: clients[0].sources()[0].startswith("hello"))
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def test_presence_is_relayed_without_echo_and_dropped_on_leave(server: Server) -> None:
    from crdt import protocol

    notebook_id = await server.create_notebook("alice/presence.ipynb")
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("alice")) as alice:
        await alice.set_presence({"user": {"name": "alice"}, "cursor": 3})
        async with YClient(url, server.token("bob")) as bob:
            # The newcomer gets everyone's presence, and no empty server entry; who each
            # one is comes from the server.
            await bob.wait_for(lambda: alice.doc.client_id in bob.present())
            assert list(bob.present()) == [alice.doc.client_id]
            assert shown_as(bob, alice.doc.client_id, "alice", "owner") == {"cursor": 3}
            await bob.set_presence({"user": {"name": "bob"}, "cursor": 0})
            await alice.wait_for(lambda: bob.doc.client_id in alice.present())
            assert shown_as(alice, bob.doc.client_id, "bob", "editor") == {"cursor": 0}
            # A re-send of the same clock (what y-websocket clients do) is not forwarded.
            before = len(alice.awareness_messages)
            entry = bob.awareness[alice.doc.client_id]
            resend = json.dumps(entry[1])
            await bob.send(
                protocol.awareness_message(
                    protocol.encode_awareness_update(
                        [protocol.AwarenessEntry(alice.doc.client_id, entry[0], resend)]
                    )
                )
            )
            await bob.set_presence({"user": {"name": "bob"}, "cursor": 1})
            await alice.wait_for(lambda: alice.present()[bob.doc.client_id]["cursor"] == 1)
            assert len(alice.awareness_messages) == before + 1
        # Bob's presence is gone when his socket closes.
        await alice.wait_for(lambda: bob.doc.client_id not in alice.present())
        # Alice never received her own presence back.
        assert all(
            e.client_id != alice.doc.client_id for m in alice.awareness_messages for e in m
        )


async def test_presence_shows_who_is_really_there(server: Server) -> None:
    """Nobody can appear as someone else: not by claiming a name, nor by taking over
    another connection's presence entry."""
    from crdt import protocol

    notebook_id = await server.create_notebook("alice/spoof.ipynb")
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("alice")) as alice, YClient(url, server.token("bob")) as bob:
        await alice.set_presence({"user": {"name": "alice"}, "cursor": 1})
        await bob.wait_for(lambda: alice.doc.client_id in bob.present())
        # Bob writes over Alice's entry (her client id, a newer clock)...
        forged = protocol.AwarenessEntry(
            alice.doc.client_id, 99, json.dumps({"user": {"name": "evil"}, "cursor": 99})
        )
        await bob.send(protocol.awareness_message(protocol.encode_awareness_update([forged])))
        # ...and claims to be Alice, with a colour of his choosing, in his own entry.
        claimed = {"username": "alice", "name": "alice", "color": "#000000", "role": "owner"}
        await bob.set_presence({"user": claimed, "cursor": 2})
        await alice.wait_for(lambda: bob.doc.client_id in alice.present())
        assert shown_as(alice, bob.doc.client_id, "bob", "editor") == {"cursor": 2}
        async with YClient(url, server.token("carol")) as carol:
            await carol.wait_for(lambda: len(carol.present()) == 2)
            assert shown_as(carol, alice.doc.client_id, "alice", "owner") == {"cursor": 1}
            assert shown_as(carol, bob.doc.client_id, "bob", "editor") == {"cursor": 2}
            # The same person looks the same to everyone.
            assert carol.present()[alice.doc.client_id] == bob.present()[alice.doc.client_id]
            assert carol.present()[bob.doc.client_id] == alice.present()[bob.doc.client_id]
