"""The notebook's path in its document (the YNotebook state map) follows renames to open tabs."""

from __future__ import annotations

from tests.conftest import Server
from tests.yclient import YClient


async def test_open_tabs_see_the_path_and_its_rename(server: Server) -> None:
    # Until services.py passes root= to the RoomManager, the test sets it.
    server.services.rooms.root = server.services.settings.root_dir
    notebook_id = await server.create_notebook("alice/before.ipynb")
    made = await server.api("PUT", "/api/contents/alice/sub", {"type": "directory"})
    assert made.code == 201, made.body
    async with YClient(server.ws_url(notebook_id), server.token()) as alice:
        await alice.wait_for(lambda: alice.notebook.path == "alice/before.ipynb")
        response = await server.api(
            "PATCH", "/api/contents/alice/before.ipynb", {"path": "alice/sub/after.ipynb"}
        )
        assert response.code == 200, response.body
        await alice.wait_for(lambda: alice.notebook.path == "alice/sub/after.ipynb", timeout=5)
        room = server.services.rooms.get(notebook_id)
        assert room is not None
        room.set_path("alice/sub/renamed-by-the-lead.ipynb")
        await alice.wait_for(lambda: alice.notebook.path == "alice/sub/renamed-by-the-lead.ipynb")
    # The change was stored like any other: a reloaded room still holds it.
    await server.services.rooms.unload(notebook_id)
    server.services.rooms.root = None  # so that opening does not write the path again
    async with YClient(server.ws_url(notebook_id), server.token("bob")) as bob:
        assert bob.notebook.path == "alice/sub/renamed-by-the-lead.ipynb"
