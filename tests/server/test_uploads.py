"""Uploading any file into your folder: stored byte for byte, listed as what it is, path
rules as for notebooks, a size limit, and asking before replacing."""

from __future__ import annotations

import json

from tests.conftest import Server, ServerFactory

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf000000030101009c45b3a50000000049454e44ae426082"
)


async def test_any_file_uploads_and_is_listed_as_a_file(server: Server) -> None:
    root = server.services.settings.root_dir
    for name, data in (("visits.csv", b"city,visits\nLisbon,1204\n"), ("dot.png", PNG)):
        response = await server.api("PUT", f"/api/upload/alice/{name}", raw=data)
        assert response.code == 201, response.body
        entry = json.loads(response.body)
        assert (entry["type"], entry["id"], entry["size"]) == ("file", None, len(data))
        assert (root / "alice" / name).read_bytes() == data
        download = await server.api("GET", f"/api/files/alice/{name}?download=1")
        assert download.body == data
    listing = json.loads((await server.api("GET", "/api/contents/alice")).body)["content"]
    assert sorted((e["name"], e["type"]) for e in listing) == [("dot.png", "file"), ("visits.csv", "file")]

    again = await server.api("PUT", "/api/upload/alice/visits.csv", raw=b"new")
    assert again.code == 409
    assert (root / "alice" / "visits.csv").read_bytes() == b"city,visits\nLisbon,1204\n"
    replaced = await server.api("PUT", "/api/upload/alice/visits.csv?overwrite=1", raw=b"city\n")
    assert replaced.code == 201 and (root / "alice" / "visits.csv").read_bytes() == b"city\n"


async def test_bad_uploads_are_refused_and_write_nothing(make_server: ServerFactory) -> None:
    server = await make_server(max_upload_bytes=1000)
    root = server.services.settings.root_dir
    too_big = await server.api("PUT", "/api/upload/alice/big.bin", raw=b"x" * 1001)
    assert too_big.code == 413
    assert "1,001 bytes" in json.loads(too_big.body)["message"]
    for path, status in (
        ("alice/.hidden", 400),
        ("alice/../bob/x.csv", 400),
        ("alice/no-such-folder/x.csv", 404),
        ("bob/x.csv", 403),
    ):
        response = await server.api("PUT", f"/api/upload/{path}", raw=b"data")
        assert response.code == status, (path, response.code)
    (root / "alice" / "sub").mkdir(parents=True, exist_ok=True)
    assert (await server.api("PUT", "/api/upload/alice/sub", raw=b"x")).code == 409  # a folder
    assert sorted(p.name for p in (root / "alice").iterdir()) == ["sub"]
    not_a_notebook = await server.api("PUT", "/api/upload/alice/fake.ipynb", raw=b"not json")
    assert not_a_notebook.code == 422
