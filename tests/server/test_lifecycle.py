"""Rooms unload when idle and come back from the store; updates record who sent them."""

from __future__ import annotations

import time

from sqlalchemy import select

from crdt.room import Room
from crdt.store import updates
from tests.conftest import ServerFactory, wait_until
from tests.yclient import YClient


async def test_idle_room_is_saved_unloaded_and_reopened_from_the_store(
    make_server: ServerFactory,
) -> None:
    server = await make_server(room_idle_timeout=0.3)
    notebook_id = await server.create_notebook("alice/idle.ipynb")
    rooms = server.services.rooms
    async with YClient(server.ws_url(notebook_id), server.token("alice")) as alice:
        alice.notebook.ycells[0]["source"].insert(0, "typed by alice")

        def authors() -> set[str]:
            query = select(updates.c.username).where(updates.c.room_id == notebook_id)
            with server.services.store_db.begin() as conn:
                return set(conn.execute(query).scalars())

        await wait_until(lambda: authors() == {"alice"})
    await wait_until(lambda: rooms.get(notebook_id) is None)
    path = server.services.settings.root_dir / "alice" / "idle.ipynb"
    assert "typed by alice" in path.read_text()
    async with YClient(server.ws_url(notebook_id), server.token("bob")) as bob:
        assert bob.sources() == ["typed by alice"]


async def test_store_is_compacted_while_people_type(make_server: ServerFactory) -> None:
    server = await make_server(compact_after_updates=20)
    notebook_id = await server.create_notebook("alice/compact.ipynb")
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("alice")) as alice, YClient(url, server.token("bob")) as bob:
        for i in range(200):
            alice.notebook.ycells[0]["source"].insert(0, f"{i % 10}")
        expected = "".join(str(i % 10) for i in reversed(range(200)))
        await bob.wait_for(lambda: bob.sources() == [expected])
        stored = await server.services.store.load(notebook_id)
        assert stored is not None
        assert len(stored.tail) < 40
    async with YClient(url, server.token("carol")) as carol:
        assert carol.sources() == [expected]


async def test_a_held_room_stays_loaded_without_clients_and_server_writes_reach_newcomers(
    make_server: ServerFactory,
) -> None:
    server = await make_server(room_idle_timeout=0.2)
    notebook_id = await server.create_notebook("alice/held.ipynb")
    rooms = server.services.rooms
    holder = object()
    room = await rooms.hold(notebook_id, holder)
    async with YClient(server.ws_url(notebook_id), server.token("alice")):
        pass
    # Nobody is connected; a server-side writer (a running kernel) keeps writing.
    for i in range(5):
        with room.doc.transaction():
            room.notebook.ycells[0]["source"].insert(0, f"out{i} ")
    # Well past the idle timeout and several upkeep ticks (0.2 s each), it is still loaded.
    idle_since = time.monotonic()
    await wait_until(lambda: time.monotonic() - idle_since > 1.0, timeout=3)
    assert rooms.get(notebook_id) is room and not room.closing
    async with YClient(server.ws_url(notebook_id), server.token("bob")) as bob:
        assert bob.sources() == ["out4 out3 out2 out1 out0 "]
    closed: list[str] = []

    async def record(r: Room) -> None:
        closed.append(r.room_id)

    room.on_close(record)
    room.release(holder)
    await wait_until(lambda: rooms.get(notebook_id) is None)
    assert closed == [notebook_id]
