"""Bad input gets a clear error, changes nothing, and disturbs nobody else."""

from __future__ import annotations

import json

import pytest
import websockets

from crdt import protocol
from tests.conftest import Server, ServerFactory
from tests.yclient import YClient


async def expect_refused(url: str, headers: dict[str, str], status: int) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url, additional_headers=headers):
            pass
    assert refused.value.response.status_code == status


async def test_websocket_refused_before_upgrade_without_valid_token(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/private.ipynb")
    url = server.ws_url(notebook_id)
    await expect_refused(url, {}, 401)
    await expect_refused(url, {"Authorization": "token not-a-real-token"}, 401)
    await expect_refused(server.ws_url("0" * 32), {"Authorization": f"token {server.token()}"}, 404)
    # A valid user it is not shared with is told it does not exist, like a wrong id.
    await expect_refused(url, {"Authorization": f"token {server.token('mallory')}"}, 404)
    # A browser may pass the token as a query parameter instead.
    async with websockets.connect(f"{url}?token={server.token()}"):
        pass


async def test_rest_api_needs_a_valid_token(server: Server) -> None:
    assert (await server.api("GET", "/api/contents/", user=None)).code == 401
    bad = await server.api("GET", "/api/contents/", user=None, headers={"Authorization": "token x"})
    assert bad.code == 401
    assert json.loads(bad.body)["message"] == "authentication required"
    me = await server.api("GET", "/api/user")
    assert json.loads(me.body)["name"] == "alice"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        # In alice's own folder, where she may create notebooks: the path itself is refused.
        ("alice/../../escape.ipynb", 400),
        ("alice/a/../../../escape.ipynb", 400),
        ("alice/%2e%2e/%2e%2e/escape.ipynb", 400),
        ("alice/../bob/escape.ipynb", 400),  # into another user's folder
        ("alice/.hidden.ipynb", 400),
        ("alice/a%5Cb.ipynb", 400),
        # Not in alice's folder at all: refused before the path is even looked at.
        ("../escape.ipynb", 403),
        ("%2e%2e/escape.ipynb", 403),
    ],
)
async def test_paths_outside_the_root_are_refused(server: Server, path: str, status: int) -> None:
    root = server.services.settings.root_dir
    (root / "bob").mkdir()
    assert (await server.api("GET", "/api/contents/")).code == 200  # alice's folder exists

    def tree() -> list[str]:
        return sorted(str(p.relative_to(root.parent)) for p in root.parent.rglob("*"))

    before = tree()
    response = await server.api("PUT", f"/api/contents/{path}", {"type": "notebook"})
    assert response.code == status, response.body
    assert tree() == before


async def test_symlink_escaping_the_root_is_refused(server: Server) -> None:
    root = server.services.settings.root_dir
    outside = root.parent / "outside"
    outside.mkdir()
    (root / "alice").mkdir()
    (root / "alice" / "link").symlink_to(outside)
    response = await server.api("PUT", "/api/contents/alice/link/x.ipynb", {"type": "notebook"})
    assert response.code == 400
    assert "root" in json.loads(response.body)["message"] or "outside" in json.loads(response.body)["message"]
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff", 1007),  # integer too long
        (b"\x00\x02\x05ab", 1007),  # truncated update
        (b"\x00\x02\x03\xff\xff\xff", 1007),  # update that does not decode
        (b"\x00\x07\x00", 1007),  # unknown sync step
        (b"\x09", 1007),  # unknown message type
        (b"\x01\x05\x01\x01\x01\x02{", 1007),  # awareness state that is not JSON
    ],
)
async def test_malformed_message_closes_only_that_connection(
    server: Server, message: bytes, code: int
) -> None:
    notebook_id = await server.create_notebook("alice/target.ipynb")
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("alice")) as alice, YClient(url, server.token("bob")) as bob:
        alice.notebook.ycells[0]["source"].insert(0, "safe")
        await bob.wait_for(lambda: bob.sources() == ["safe"])
        await bob.send(message)
        await bob.closed.wait()
        assert bob.close_code == code
        assert bob.close_reason
        # Alice goes on as if nothing happened; the document is untouched.
        alice.notebook.ycells[0]["source"].insert(4, "!")
        async with YClient(url, server.token("carol")) as carol:
            await carol.wait_for(lambda: carol.sources() == ["safe!"])


async def test_text_frames_and_oversized_messages_are_refused(make_server: ServerFactory) -> None:
    server = await make_server(max_message_size=1024 * 1024)
    notebook_id = await server.create_notebook("alice/big.ipynb")
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("alice")) as alice:
        async with YClient(url, server.token("bob")) as bob:
            await bob.ws.send("hello")
            await bob.closed.wait()
            assert bob.close_code == 1003
        async with YClient(url, server.token("bob")) as bob:
            await bob.send(protocol.sync_update(b"\x00" * (2 * 1024 * 1024)))
            await bob.closed.wait()
            assert bob.close_code == 1009
        alice.notebook.ycells[0]["source"].insert(0, "still here")
        async with YClient(url, server.token("carol")) as carol:
            await carol.wait_for(lambda: carol.sources() == ["still here"])
