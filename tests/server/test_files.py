"""The .ipynb files: untouched ones stay byte-identical; changes on disk reach the room."""

from __future__ import annotations

import json
from typing import Any

import nbformat

from tests.conftest import Server, wait_until
from tests.yclient import YClient

# Not nbformat's own formatting (indent 2, unsorted keys, a float, no final newline):
# opening it must not rewrite it.
HAND_WRITTEN = json.dumps(
    {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"zoom": 1.0, "kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "cells": [
            {"id": "x1", "cell_type": "markdown", "metadata": {}, "source": ["# Title\n", "text"]},
            {"id": "x2", "cell_type": "code", "metadata": {}, "execution_count": 3,
             "source": "print(1)", "outputs": [{"output_type": "stream", "name": "stdout",
                                                "text": ["1\n"]}]},
        ],
    },
    indent=2,
).encode()


async def test_untouched_notebook_round_trips_byte_identical(server: Server) -> None:
    path = server.services.settings.root_dir / "alice" / "hand.ipynb"
    path.parent.mkdir()
    path.write_bytes(HAND_WRITTEN)
    notebook_id = await server.services.contents.id_for_path("alice/hand.ipynb")
    async with YClient(server.ws_url(notebook_id), server.token()) as alice:
        assert alice.sources() == ["# Title\ntext", "print(1)"]
        await alice.set_presence({"user": {"name": "alice"}})  # presence is not an edit
    await server.services.rooms.unload(notebook_id)
    assert server.services.rooms.get(notebook_id) is None
    assert path.read_bytes() == HAND_WRITTEN
    response = await server.api("GET", f"/api/notebooks/{notebook_id}")
    assert response.body == HAND_WRITTEN


async def test_file_changed_on_disk_shows_up_and_old_content_is_kept(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/shared.ipynb")
    path = server.services.settings.root_dir / "alice" / "shared.ipynb"
    async with YClient(server.ws_url(notebook_id), server.token()) as alice:
        alice.notebook.ycells[0]["source"].insert(0, "room version")
        await wait_until(lambda: "room version" in path.read_text())

        # Another program (git pull, an editor) rewrites the file.
        nb = nbformat.read(path, as_version=4)
        nb.cells[0].source = "disk version"
        nb.cells.append(nbformat.v4.new_markdown_cell("added on disk"))
        nbformat.write(nb, path)

        await alice.wait_for(lambda: alice.sources() == ["disk version", "added on disk"])
        response = await server.api("GET", f"/api/notebooks/{notebook_id}/checkpoints")
        checkpoints = json.loads(response.body)["checkpoints"]
        assert len(checkpoints) == 1
        old = await server.api(
            "GET", f"/api/notebooks/{notebook_id}/checkpoints/{checkpoints[0]['name']}"
        )
        old_cells = nbformat.reads(old.body.decode(), as_version=4).cells
        assert [c.source for c in old_cells] == ["room version"]
        # The room's later edits are saved on top of the disk version.
        alice.notebook.ycells[1]["source"].insert(0, "+ ")
        await wait_until(lambda: "+ added on disk" in path.read_text())
        cells: list[dict[str, Any]] = nbformat.read(path, as_version=4).cells
        assert [c.source for c in cells] == ["disk version", "+ added on disk"]


async def test_rename_keeps_the_id_and_the_open_room(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/before.ipynb")
    made = await server.api("PUT", "/api/contents/alice/sub", {"type": "directory"})
    assert made.code == 201, made.body
    async with YClient(server.ws_url(notebook_id), server.token()) as alice:
        response = await server.api(
            "PATCH", "/api/contents/alice/before.ipynb", {"path": "alice/sub/after.ipynb"}
        )
        assert response.code == 200, response.body
        assert json.loads(response.body)["id"] == notebook_id
        alice.notebook.ycells[0]["source"].insert(0, "after the move")
        after = server.services.settings.root_dir / "alice" / "sub" / "after.ipynb"
        await wait_until(lambda: after.exists() and "after the move" in after.read_text())
    assert not (server.services.settings.root_dir / "alice" / "before.ipynb").exists()
    listing = json.loads((await server.api("GET", "/api/contents/alice/sub")).body)
    assert [e["id"] for e in listing["content"]] == [notebook_id]


async def test_delete_disconnects_the_room_and_forgets_it(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/gone.ipynb")
    async with YClient(server.ws_url(notebook_id), server.token()) as alice:
        response = await server.api("DELETE", "/api/contents/alice/gone.ipynb")
        assert response.code == 204
        await alice.closed.wait()
        assert alice.close_code == 4404
    assert not (server.services.settings.root_dir / "alice" / "gone.ipynb").exists()
    assert await server.services.store.load(notebook_id) is None
    response = await server.api("GET", f"/api/notebooks/{notebook_id}")
    assert response.code == 404


async def test_upload_and_download(server: Server) -> None:
    folder = server.services.settings.root_dir / "alice"
    response = await server.api("PUT", "/api/upload/alice/up.ipynb", raw=HAND_WRITTEN)
    assert response.code == 201, response.body
    notebook_id = json.loads(response.body)["id"]
    assert (folder / "up.ipynb").read_bytes() == HAND_WRITTEN
    download = await server.api("GET", f"/api/notebooks/{notebook_id}?download=1")
    assert download.headers["Content-Disposition"].startswith('attachment; filename="up.ipynb"')
    assert download.body == HAND_WRITTEN

    bad = await server.api("PUT", "/api/upload/alice/bad.ipynb", raw=b'{"cells": 3}')
    assert bad.code == 422
    assert "notebook" in json.loads(bad.body)["message"]
    assert not (folder / "bad.ipynb").exists()
    again = await server.api("PUT", "/api/upload/alice/up.ipynb", raw=HAND_WRITTEN)
    assert again.code == 409
