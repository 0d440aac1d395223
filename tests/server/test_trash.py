"""Deleting moves to the owner's trash: restored, a notebook comes back where it was with
its id, its shares, its history and every acknowledged edit; deleted for good, or after
``trash_days``, it is gone. Only those who could delete it see or restore it."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.conftest import Server, ServerFactory, wait_until
from tests.yclient import YClient


async def trash_of(server: Server, user: str = "alice") -> list[dict[str, Any]]:
    response = await server.api("GET", "/api/trash", user=user)
    assert response.code == 200, response.body
    items: list[dict[str, Any]] = json.loads(response.body)["items"]
    return items


async def test_a_deleted_notebook_comes_back_with_its_id_shares_and_last_edit(
    server: Server,
) -> None:
    notebook_id = await server.create_notebook("alice/essay.ipynb", editors=("bob",))
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("alice")) as alice, YClient(url, server.token("bob")) as bob:
        bob.notebook.ycells[0]["source"].insert(0, "bob's last words")
        # Broadcast only once stored: alice seeing it means the server acknowledged it.
        await alice.wait_for(lambda: "bob's last words" in alice.sources()[0])
        deleted = await server.api("DELETE", "/api/contents/alice/essay.ipynb")
        assert deleted.code == 204
        for client in (alice, bob):
            await client.closed.wait()
            assert client.close_code == 4404
    root = server.services.settings.root_dir
    assert not (root / "alice" / "essay.ipynb").exists()
    assert (await server.api("GET", f"/api/notebooks/{notebook_id}", user="bob")).code == 404
    listing = json.loads((await server.api("GET", "/api/contents/alice")).body)["content"]
    assert [e["name"] for e in listing] == []  # .trash is never listed
    assert (await server.api("GET", "/api/contents/alice/.trash")).code == 400

    [item] = await trash_of(server)
    assert (item["path"], item["kind"], item["deleted_by"]) == ("alice/essay.ipynb", "notebook", "alice")
    assert item["purge_at"] == item["deleted_at"] + 30 * 24 * 3600
    assert await trash_of(server, "bob") == []  # an editor could not have deleted it
    restore = f"/api/trash/{item['id']}/restore"
    assert (await server.api("POST", restore, user="bob")).code == 404

    restored = await server.api("POST", restore)
    assert restored.code == 200, restored.body
    assert json.loads(restored.body)["id"] == notebook_id
    assert await trash_of(server) == []
    # Bob's share came back with it, and so did his edit.
    async with YClient(url, server.token("bob")) as bob:
        assert "bob's last words" in bob.sources()[0]
    assert (await server.api("POST", restore)).code == 404  # restored once


async def test_a_folder_comes_back_whole_and_a_taken_path_is_refused(server: Server) -> None:
    for folder in ("alice/course", "alice/course/deep"):
        assert (await server.api("PUT", f"/api/contents/{folder}", {"type": "directory"})).code == 201
    first = await server.create_notebook("alice/course/week1.ipynb", editors=())
    second = await server.create_notebook("alice/course/deep/week2.ipynb", editors=())
    root = server.services.settings.root_dir
    (root / "alice" / "course" / "data.csv").write_text("a,b\n1,2\n")
    assert (await server.api("DELETE", "/api/contents/alice/course")).code == 204
    assert not (root / "alice" / "course").exists()
    [item] = await trash_of(server)
    assert item["kind"] == "directory" and item["name"] == "course"

    # Someone made a new "course" meanwhile: restoring would overwrite it, so it is refused.
    assert (await server.api("PUT", "/api/contents/alice/course", {"type": "directory"})).code == 201
    refused = await server.api("POST", f"/api/trash/{item['id']}/restore")
    assert refused.code == 409
    assert "rename it" in json.loads(refused.body)["message"]
    assert len(await trash_of(server)) == 1  # still there, unchanged
    moved = await server.api("PATCH", "/api/contents/alice/course", {"path": "alice/course-new"})
    assert moved.code == 200

    assert (await server.api("POST", f"/api/trash/{item['id']}/restore")).code == 200
    assert (root / "alice" / "course" / "data.csv").read_text() == "a,b\n1,2\n"
    assert await server.services.contents.id_for_path("alice/course/week1.ipynb") == first
    assert await server.services.contents.id_for_path("alice/course/deep/week2.ipynb") == second


async def test_deleting_for_good_forgets_the_notebook_and_its_shares(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/draft.ipynb", editors=("bob",))
    assert (await server.api("DELETE", "/api/contents/alice/draft.ipynb")).code == 204
    [item] = await trash_of(server)
    assert (await server.api("DELETE", f"/api/trash/{item['id']}", user="bob")).code == 404
    assert (await server.api("DELETE", f"/api/trash/{item['id']}")).code == 204
    assert await trash_of(server) == []
    assert not any(server.services.settings.root_dir.glob("alice/.trash/*"))
    assert server.services.sharing.list_shares(notebook_id) == []
    assert (await server.api("POST", f"/api/trash/{item['id']}/restore")).code == 404


async def test_items_older_than_trash_days_are_deleted_for_good(make_server: ServerFactory) -> None:
    server = await make_server(trash_days=0.5 / (24 * 3600))  # half a second
    await server.create_notebook("alice/old.ipynb", editors=())
    assert (await server.api("DELETE", "/api/contents/alice/old.ipynb")).code == 204
    [item] = await trash_of(server)
    await wait_until(lambda: time.time() > item["purge_at"])
    assert await server.services.notebooks.purge_trash() == 1
    assert await trash_of(server) == []
    assert not any(server.services.settings.root_dir.glob("alice/.trash/*"))


async def test_with_trash_days_0_deleting_is_for_good(make_server: ServerFactory) -> None:
    server = await make_server(trash_days=0)
    await server.create_notebook("alice/now.ipynb", editors=())
    assert (await server.api("DELETE", "/api/contents/alice/now.ipynb")).code == 204
    assert await trash_of(server) == []
    assert not (server.services.settings.root_dir / "alice" / ".trash").exists()
