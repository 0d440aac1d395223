"""GET /api/files/<path>: files that are not notebooks, downloaded by path, as attachments
that never run in the app's origin, and only by those who may see them."""

from __future__ import annotations

import json

from tests.conftest import Server

CSV = "city,visits\nLisbon,1204\nNairobi,873\nSão Paulo,652\n".encode()


async def write_into(server: Server, path: str, data: bytes) -> None:
    """Write a file into a user's folder as another program (a kernel) would."""
    owner = path.split("/", 1)[0]
    assert (await server.api("GET", f"/api/contents/{owner}", user=owner)).code == 200
    (server.services.settings.root_dir / path).write_bytes(data)


async def test_the_owner_downloads_a_file_as_an_attachment(server: Server) -> None:
    await write_into(server, "alice/data.csv", CSV)
    listing = json.loads((await server.api("GET", "/api/contents/alice")).body)
    [entry] = [e for e in listing["content"] if e["name"] == "data.csv"]
    assert entry["type"] == "file" and entry["id"] is None and entry["size"] == len(CSV)

    response = await server.api("GET", "/api/files/alice/data.csv?download=1")
    assert response.code == 200, response.body
    assert response.body == CSV
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="data.csv"')
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]


async def test_html_is_never_served_as_a_page(server: Server) -> None:
    page = b"<script>parent.stolen = document.cookie</script>"
    await write_into(server, "alice/page.html", page)
    await write_into(server, "alice/é 1.txt", b"x")
    for query in ("", "?download=1"):
        response = await server.api("GET", f"/api/files/alice/page.html{query}")
        assert response.code == 200
        assert response.body == page
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.headers["Content-Disposition"].startswith("attachment;")
    odd = await server.api("GET", "/api/files/alice/%C3%A9%201.txt")
    assert odd.code == 200 and odd.body == b"x"
    assert odd.headers["Content-Disposition"] == (
        "attachment; filename=\"_ 1.txt\"; filename*=UTF-8''%C3%A9%201.txt"
    )


async def test_someone_without_access_to_the_folder_gets_404(server: Server) -> None:
    await write_into(server, "alice/data.csv", CSV)
    # bob has a notebook of alice's shared with him: that gives him nothing else of hers.
    await server.create_notebook("alice/shared.ipynb", editors=("bob",))
    denied = await server.api("GET", "/api/files/alice/data.csv", user="bob")
    missing = await server.api("GET", "/api/files/alice/nothing.csv", user="bob")
    assert denied.code == missing.code == 404
    assert CSV not in denied.body
    # The same answer as for a file that does not exist: nothing tells them it is there.
    assert json.loads(denied.body)["message"] == "no file or folder 'alice/data.csv'"
    assert json.loads(missing.body)["message"] == "no file or folder 'alice/nothing.csv'"
    # Nor without logging in.
    assert (await server.api("GET", "/api/files/alice/data.csv", user=None)).code == 401


async def test_folders_notebooks_and_bad_paths_are_refused(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/nb.ipynb", editors=())
    (server.services.settings.root_dir / "alice" / "sub").mkdir()
    folder = await server.api("GET", "/api/files/alice/sub")
    assert folder.code == 400 and "is a folder" in json.loads(folder.body)["message"]
    notebook = await server.api("GET", "/api/files/alice/nb.ipynb")
    assert notebook.code == 400
    assert f"/api/notebooks/{notebook_id}?download=1" in json.loads(notebook.body)["message"]
    assert (await server.api("GET", "/api/files/alice/nothing.csv")).code == 404
    for bad in ("alice/%2E%2E/bob/x.csv", "alice/.hidden"):
        response = await server.api("GET", f"/api/files/{bad}")
        assert response.code == 400, (bad, response.body)
