"""The Jupyter Server API under /jupyter/: contents, sessions, me, status, in Jupyter's shapes."""

from __future__ import annotations

import json
from typing import Any

import nbformat
from tornado.web import create_signed_value

from collab_server.handlers.base import SESSION_COOKIE
from tests.conftest import Server, ServerFactory, wait_until
from tests.yclient import YClient

CONTENTS = "/jupyter/api/contents"
MODEL_KEYS = {
    "name", "path", "type", "writable", "created", "last_modified", "size", "mimetype",
    "format", "content",
}


def body(response: Any) -> Any:
    return json.loads(response.body)


def assert_model(model: dict[str, Any], kind: str) -> None:
    assert set(model) >= MODEL_KEYS, model
    assert model["type"] == kind
    assert model["last_modified"].endswith("Z") and "T" in model["last_modified"]


async def test_listing_a_folder_gives_models_without_content(server: Server) -> None:
    await server.create_notebook("alice/nb.ipynb", editors=())
    made = await server.api("PUT", f"{CONTENTS}/alice/data.txt",
                            {"type": "file", "format": "text", "content": "a,b\n"})
    assert made.code == 201, made.body
    response = await server.api("GET", f"{CONTENTS}/alice")
    assert response.code == 200, response.body
    folder = body(response)
    assert_model(folder, "directory")
    assert folder["format"] == "json" and folder["writable"] is True
    children = {m["name"]: m for m in folder["content"]}
    assert set(children) == {"nb.ipynb", "data.txt"}
    for child in children.values():
        assert set(child) >= MODEL_KEYS and child["content"] is None and child["format"] is None
    assert children["nb.ipynb"]["type"] == "notebook"
    assert children["nb.ipynb"]["path"] == "alice/nb.ipynb"
    assert children["data.txt"]["type"] == "file"
    assert children["data.txt"]["mimetype"] == "text/plain"

    text = body(await server.api("GET", f"{CONTENTS}/alice/data.txt"))
    assert (text["format"], text["content"]) == ("text", "a,b\n")
    b64 = body(await server.api("GET", f"{CONTENTS}/alice/data.txt?format=base64"))
    assert (b64["format"], b64["content"]) == ("base64", "YSxiCg==")
    bare = body(await server.api("GET", f"{CONTENTS}/alice/nb.ipynb?content=0"))
    assert bare["content"] is None and bare["type"] == "notebook"
    root = body(await server.api("GET", CONTENTS))
    assert [m["path"] for m in root["content"]] == ["alice"]


async def test_a_notebook_is_its_live_document_with_unsaved_edits(
    make_server: ServerFactory,
) -> None:
    server = await make_server(save_delay=600)  # nothing is saved during the test
    notebook_id = await server.create_notebook("alice/live.ipynb", editors=())
    file = server.services.settings.root_dir / "alice" / "live.ipynb"
    async with YClient(server.ws_url(notebook_id), server.token()) as alice:
        alice.notebook.ycells[0]["source"].insert(0, "typed live")
        room = server.services.rooms.get(notebook_id)
        assert room is not None
        await wait_until(lambda: "typed live" in str(room.notebook.ycells[0]["source"]))
        assert "typed live" not in file.read_text()
        response = await server.api("GET", f"{CONTENTS}/alice/live.ipynb")
        assert response.code == 200, response.body
        model = body(response)
        assert_model(model, "notebook")
        assert model["format"] == "json" and model["mimetype"] is None
        nb = nbformat.from_dict(model["content"])
        nbformat.validate(nb)
        assert nb.cells[0].source.startswith("typed live")

        # Saving the same notebook is fine; saving another one would undo live edits: 409.
        same = await server.api("PUT", f"{CONTENTS}/alice/live.ipynb",
                                {"type": "notebook", "format": "json", "content": model["content"]})
        assert same.code == 200, same.body
        other = dict(model["content"], cells=[])
        refused = await server.api("PUT", f"{CONTENTS}/alice/live.ipynb",
                                   {"type": "notebook", "format": "json", "content": other})
        assert refused.code == 409, refused.body
        assert "edited live" in body(refused)["message"]
        assert alice.sources()[0].startswith("typed live")


async def test_put_saves_a_closed_notebook_keeping_its_id(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/saved.ipynb", editors=())
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("from a Jupyter client")])
    response = await server.api("PUT", f"{CONTENTS}/alice/saved.ipynb",
                                {"type": "notebook", "format": "json", "content": nb})
    assert response.code == 200, response.body
    assert await server.services.contents.id_for_path("alice/saved.ipynb") == notebook_id
    again = body(await server.api("GET", f"{CONTENTS}/alice/saved.ipynb"))
    assert [c["source"] for c in again["content"]["cells"]] == ["from a Jupyter client"]


async def test_post_makes_untitled_notebooks_files_and_folders(server: Server) -> None:
    await server.api("GET", f"{CONTENTS}/alice")  # the first request makes alice's folder
    names = []
    for kind in ("notebook", "notebook", "directory", "directory"):
        response = await server.api("POST", f"{CONTENTS}/alice", {"type": kind})
        assert response.code == 201, response.body
        model = body(response)
        assert_model(model, kind)
        assert response.headers["Location"] == f"{CONTENTS}/{model['path'].replace(' ', '%20')}"
        names.append(model["name"])
    response = await server.api("POST", f"{CONTENTS}/alice", {"type": "file", "ext": ".py"})
    names.append(body(response)["name"])
    copied = await server.api("POST", f"{CONTENTS}/alice", {"copy_from": "alice/Untitled.ipynb"})
    assert copied.code == 201, copied.body
    names.append(body(copied)["name"])
    assert names == [
        "Untitled.ipynb", "Untitled1.ipynb", "Untitled Folder", "Untitled Folder 1",
        "untitled.py", "Untitled-Copy1.ipynb",
    ]
    nb = body(await server.api("GET", f"{CONTENTS}/alice/Untitled1.ipynb"))["content"]
    nbformat.validate(nbformat.from_dict(nb))


async def test_patch_renames_and_the_notebook_keeps_its_id(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/old.ipynb", editors=())
    response = await server.api("PATCH", f"{CONTENTS}/alice/old.ipynb", {"path": "alice/new.ipynb"})
    assert response.code == 200, response.body
    model = body(response)
    assert_model(model, "notebook")
    assert (model["path"], model["name"]) == ("alice/new.ipynb", "new.ipynb")
    assert await server.services.contents.id_for_path("alice/new.ipynb") == notebook_id
    gone = await server.api("GET", f"{CONTENTS}/alice/old.ipynb")
    assert gone.code == 404


async def test_delete_moves_to_the_trash(server: Server) -> None:
    await server.create_notebook("alice/bin.ipynb", editors=())
    response = await server.api("DELETE", f"{CONTENTS}/alice/bin.ipynb")
    assert response.code == 204, response.body
    assert (await server.api("GET", f"{CONTENTS}/alice/bin.ipynb")).code == 404
    trash = body(await server.api("GET", "/api/trash"))
    assert [item["path"] for item in trash["items"]] == ["alice/bin.ipynb"]


async def test_viewers_read_only_and_strangers_see_nothing(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/shown.ipynb", editors=())
    await server.share(notebook_id, "vera", "viewer")
    await server.share(notebook_id, "bob", "editor")
    url = f"{CONTENTS}/alice/shown.ipynb"
    seen = body(await server.api("GET", url, user="vera"))
    assert seen["writable"] is False and seen["type"] == "notebook"
    assert body(await server.api("GET", url, user="bob"))["writable"] is True
    assert body(await server.api("GET", url))["writable"] is True
    nb = seen["content"]
    for method, payload in (
        ("PUT", {"type": "notebook", "format": "json", "content": nb}),
        ("PATCH", {"path": "alice/taken.ipynb"}),
        ("DELETE", None),
    ):
        response = await server.api(method, url, payload, user="vera")
        assert response.code == 403, (method, response.body)
    server.services.users.get_or_create("mallory")
    for method, payload in (
        ("GET", None),
        ("PUT", {"type": "notebook", "format": "json", "content": nb}),
        ("PATCH", {"path": "alice/taken.ipynb"}),
        ("DELETE", None),
    ):
        response = await server.api(method, url, payload, user="mallory")
        expected = 403 if method == "PUT" else 404  # a PUT is a create there: no leak either way
        assert response.code == expected, (method, response.body)
    missing = await server.api("PUT", f"{CONTENTS}/alice/nothing.ipynb",
                               {"type": "notebook", "content": nb}, user="mallory")
    assert missing.code == 403
    assert (await server.api("GET", f"{url}/checkpoints", user="mallory")).code == 404
    assert body(await server.api("GET", f"{url}/checkpoints", user="vera")) == []
    assert (await server.api("POST", f"{url}/checkpoints", user="vera")).code == 403
    checkpoint = await server.api("POST", f"{url}/checkpoints", user="bob")
    assert checkpoint.code == 201 and body(checkpoint)["id"] == "live"


async def test_two_editors_sessions_share_one_kernel(server: Server) -> None:
    await server.create_notebook("alice/shared.ipynb", editors=("bob",))
    server.services.users.get_or_create("vera")
    request = {"path": "alice/shared.ipynb", "type": "notebook", "name": "shared.ipynb",
               "kernel": {"name": "python3"}}
    first = await server.api("POST", "/jupyter/api/sessions", request)
    assert first.code == 201, first.body
    second = await server.api("POST", "/jupyter/api/sessions", request, user="bob")
    assert second.code == 201, second.body
    a, b = body(first), body(second)
    assert a["id"] == b["id"]
    assert a["kernel"]["id"] == b["kernel"]["id"]
    assert set(a) == {"id", "path", "name", "type", "kernel", "notebook"}
    assert set(a["kernel"]) == {"id", "name", "last_activity", "execution_state", "connections"}
    assert (a["type"], a["path"], a["notebook"]) == (
        "notebook", "alice/shared.ipynb", {"path": "alice/shared.ipynb", "name": "shared.ipynb"})
    listed = body(await server.api("GET", "/jupyter/api/sessions", user="bob"))
    assert [s["id"] for s in listed] == [a["id"]]
    assert body(await server.api("GET", "/jupyter/api/sessions", user="vera")) == []
    one = await server.api("GET", f"/jupyter/api/sessions/{a['id']}", user="bob")
    assert body(one)["kernel"]["id"] == a["kernel"]["id"]
    hidden = await server.api("DELETE", f"/jupyter/api/sessions/{a['id']}", user="vera")
    assert hidden.code == 404
    ended = await server.api("DELETE", f"/jupyter/api/sessions/{a['id']}", user="bob")
    assert ended.code == 204, ended.body
    assert body(await server.api("GET", "/jupyter/api/sessions")) == []


async def test_a_viewer_gets_the_session_only_of_a_running_kernel(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/watch.ipynb", editors=())
    await server.share(notebook_id, "vera", "viewer")
    request = {"path": "alice/watch.ipynb", "type": "notebook"}
    before = await server.api("POST", "/jupyter/api/sessions", request, user="vera")
    assert before.code == 403, before.body
    started = body(await server.api("POST", "/jupyter/api/sessions", request))
    after = await server.api("POST", "/jupyter/api/sessions", request, user="vera")
    assert after.code == 201 and body(after)["kernel"]["id"] == started["kernel"]["id"]
    ended = await server.api("DELETE", f"/jupyter/api/sessions/{started['id']}", user="vera")
    assert ended.code == 403


async def test_me_status_version_and_kernelspecs(server: Server) -> None:
    me = await server.api("GET", "/jupyter/api/me", user="bob")
    assert me.code == 200, me.body
    identity = body(me)["identity"]
    assert set(identity) == {"username", "name", "display_name", "initials", "color", "avatar_url"}
    assert identity["username"] == "bob"
    assert body(me)["permissions"] == {}
    by_query = await server.api("GET", f"/jupyter/api/me?token={server.token('carol')}", user=None)
    assert body(by_query)["identity"]["username"] == "carol"
    assert (await server.api("GET", "/jupyter/api/me", user=None)).code == 401
    status = body(await server.api("GET", "/jupyter/api/status"))
    assert set(status) == {"started", "last_activity", "connections", "kernels"}
    assert body(await server.api("GET", "/jupyter/api", user=None))["version"].startswith("2.")
    specs = body(await server.api("GET", "/jupyter/api/kernelspecs"))
    assert specs["default"] in specs["kernelspecs"]


async def test_cookie_sessions_need_the_xsrf_value_and_query_tokens_do_not(server: Server) -> None:
    """Our XSRF rule holds under /jupyter/: a session cookie needs ``_xsrf``; a ``?token=``,
    which nothing sends by itself, does not."""
    alice = server.services.users.get_or_create("alice")
    assert (await server.api("GET", f"{CONTENTS}/alice")).code == 200
    signed = create_signed_value(
        server.services.cookie_secret, SESSION_COOKIE, server.services.sessions.create(alice)
    ).decode()
    cookie = {"Cookie": f"{SESSION_COOKIE}={signed}"}
    refused = await server.api("POST", f"{CONTENTS}/alice", {"type": "notebook"},
                               user=None, headers=cookie)
    assert refused.code == 403, refused.body
    with_xsrf = {"Cookie": f"{cookie['Cookie']}; _xsrf=0123456789abcdef",
                 "X-XSRFToken": "0123456789abcdef"}
    made = await server.api("POST", f"{CONTENTS}/alice", {"type": "notebook"},
                            user=None, headers=with_xsrf)
    assert made.code == 201, made.body
    by_query = await server.api("POST", f"{CONTENTS}/alice?token={server.token()}",
                                {"type": "notebook"}, user=None)
    assert by_query.code == 201, by_query.body
    assert [body(made)["name"], body(by_query)["name"]] == ["Untitled.ipynb", "Untitled1.ipynb"]
