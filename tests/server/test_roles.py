"""Roles enforced by the server: viewers never write, revocation reaches open sockets,
tutors watch their students, share links grant and lose access, presence names are
the server's."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from pycrdt import Text

from auth.sharing import Role
from tests.conftest import Server, wait_until
from tests.yclient import YClient

from .test_sync import new_cell


def saved_sources(path: Path) -> list[str]:
    """Cell sources of the .ipynb file as a user opening it would read them."""
    cells = json.loads(path.read_text())["cells"]
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells]


async def test_viewer_edits_are_refused_and_change_nothing(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/lesson.ipynb", editors=())
    await server.share(notebook_id, "vic", "viewer")
    path = server.services.settings.root_dir / "alice" / "lesson.ipynb"
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("alice")) as alice:
        alice.notebook.ycells[0]["source"].insert(0, "x = 1\n")
        await wait_until(lambda: "x = 1" in path.read_text())
        async with YClient(url, server.token("vic")) as vic:
            await vic.wait_for(lambda: vic.sources() == ["x = 1\n"])
            before_file = path.read_bytes()
            before_store = await server.services.store.load(notebook_id)
            # The viewer types and adds a cell: its client applies them locally and sends them.
            source = vic.notebook.ycells[0]["source"]
            assert isinstance(source, Text)
            source.insert(0, "import os; os.system('rm -rf ~')\n")
            vic.notebook.ycells.append(new_cell("evil", "evil()"))
            await vic.wait_for(lambda: len(vic.denied) >= 2)
            assert "read-only" in vic.denied[0]
            # The editor keeps working and never sees the viewer's edits.
            alice.notebook.ycells[0]["source"].insert(0, "# alice\n")
            await vic.wait_for(lambda: "# alice" in "".join(vic.sources()))
            await wait_until(lambda: "# alice" in path.read_text())
            assert alice.sources() == ["# alice\nx = 1\n"]
            assert vic.closed.is_set() is False
    # Nothing of the viewer's reached the stored updates or the file.
    after = await server.services.store.load(notebook_id)
    assert after is not None and before_store is not None
    assert saved_sources(path) == ["# alice\nx = 1\n"]
    assert "evil" not in path.read_text() and "os.system" not in path.read_text()
    assert before_file != path.read_bytes()  # alice's edit did land


async def test_unknown_user_gets_no_socket(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/private.ipynb", editors=())
    client = YClient(server.ws_url(notebook_id), server.token("mallory"))
    try:
        await client.connect()
        raise AssertionError("connected without access")
    except Exception as e:  # websockets.InvalidStatus
        assert "404" in str(e)
    response = await server.api("GET", f"/api/notebooks/{notebook_id}", user="mallory")
    assert response.code == 404
    listing = await server.api("GET", "/api/contents/alice", user="mallory")
    assert listing.code == 404


async def test_revoking_a_share_closes_the_open_socket_within_5_seconds(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/shared.ipynb", editors=())
    share = await server.share(notebook_id, "vic", "viewer")
    async with YClient(server.ws_url(notebook_id), server.token("vic")) as vic:
        start = time.monotonic()
        response = await server.api(
            "DELETE", f"/api/notebooks/{notebook_id}/shares/{share['id']}"
        )
        assert response.code == 204
        async with asyncio.timeout(5):
            await vic.closed.wait()
        assert time.monotonic() - start < 5
        assert vic.close_code == 4403


async def test_downgrading_an_editor_makes_the_open_socket_read_only(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/pair.ipynb", editors=("bob",))
    path = server.services.settings.root_dir / "alice" / "pair.ipynb"
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("alice")) as alice, YClient(url, server.token("bob")) as bob:
        bob.notebook.ycells[0]["source"].insert(0, "bob = 1\n")
        await alice.wait_for(lambda: alice.sources() == ["bob = 1\n"])
        await server.share(notebook_id, "bob", "viewer")
        # Within 5 s the socket is read-only: bob's next edit is refused.
        deadline = time.monotonic() + 5
        attempt = 0
        while not bob.denied:
            assert time.monotonic() < deadline, "bob was not downgraded within 5 s"
            attempt += 1
            bob.notebook.ycells[0]["source"].insert(0, f"# try {attempt}\n")
            try:
                await bob.wait_for(lambda: bool(bob.denied), timeout=0.5)
            except TimeoutError:
                pass
        applied = alice.sources()[0]
        await wait_until(lambda: saved_sources(path) == [applied])
        # Later edits never reach alice.
        bob.notebook.ycells[0]["source"].insert(0, "# after downgrade\n")
        await bob.wait_for(lambda: len(bob.denied) >= 2)
        alice.notebook.ycells.append(new_cell("a1", "alice = 2\n"))
        await bob.wait_for(lambda: "alice = 2\n" in bob.sources())
        assert "# after downgrade" not in "".join(alice.sources())


async def test_tutor_watches_a_student_without_a_share_and_cannot_edit(make_server) -> None:  # type: ignore[no-untyped-def]
    server: Server = await make_server(tutor_groups={"tutors": ["class-a"]})
    users = server.services.users
    for name in ("tina", "sam", "other"):
        users.get_or_create(name)
    users.create_group("tutors")
    users.create_group("class-a")
    users.add_member("tutors", "tina")
    users.add_member("class-a", "sam")
    notebook_id = await server.create_notebook("sam/homework.ipynb", editors=())
    other_id = await server.create_notebook("other/secret.ipynb", editors=())
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("sam")) as sam:
        sam.notebook.ycells[0]["source"].insert(0, "answer = 41\n")
        async with YClient(url, server.token("tina")) as tina:
            await tina.wait_for(lambda: tina.sources() == ["answer = 41\n"])
            # The student sees the tutor is there, as a viewer named by the server.
            await tina.set_presence({"user": {"name": "not tina"}, "cell": "s1"})
            await sam.wait_for(
                lambda: any(s.get("user", {}).get("name") == "tina" for s in sam.present().values())
            )
            shown = next(s["user"] for s in sam.present().values())
            assert shown["role"] == "viewer" and shown["name"] == "tina"
            tina.notebook.ycells[0]["source"].insert(0, "answer = 42 #")
            await tina.wait_for(lambda: bool(tina.denied))
            sam.notebook.ycells[0]["source"].insert(0, "# checked\n")
            await tina.wait_for(lambda: "# checked" in tina.sources()[0])
            assert sam.sources() == ["# checked\nanswer = 41\n"]
    # Only the linked student group: another user's notebook stays hidden.
    response = await server.api("GET", f"/api/notebooks/{other_id}", user="tina")
    assert response.code == 404
    role = await server.api("GET", f"/api/notebooks/{notebook_id}/role", user="tina")
    assert json.loads(role.body)["role"] == "viewer"
    # Removing the student from the group ends the watching (checked through the API).
    users.remove_member("class-a", "sam")
    response = await server.api("GET", f"/api/notebooks/{notebook_id}", user="tina")
    assert response.code == 404


async def test_presence_shows_the_authenticated_identity(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/who.ipynb", editors=("bob",))
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("alice")) as alice, YClient(url, server.token("bob")) as bob:
        await bob.set_presence({"user": {"name": "alice", "color": "#000000"}, "cursor": 3})
        await alice.wait_for(lambda: len(alice.present()) == 1)
        state = next(iter(alice.present().values()))
        assert state["cursor"] == 3
        assert state["user"]["name"] == "bob" and state["user"]["username"] == "bob"
        assert state["user"]["color"] != "#000000"
        assert state["user"]["role"] == "editor"


async def test_share_link_grants_its_role_until_revoked(server: Server) -> None:
    from tests.webclient import WebClient

    notebook_id = await server.create_notebook("alice/linked.ipynb", editors=())
    response = await server.api(
        "POST", f"/api/notebooks/{notebook_id}/links", {"role": "viewer", "expires_in": 3600}
    )
    assert response.code == 201, response.body
    link = json.loads(response.body)
    # Lee opens the link in a browser session.
    lee = server.services.users.get_or_create("lee")
    browser = WebClient(server.url)
    browser.cookies["127.0.0.1:%d" % server.port] = {}
    await login_with_session(server, browser, lee.name)
    page = await browser.get(link["url"])
    assert page.code == 200 and b"alice/linked.ipynb" in page.body and b"viewer" in page.body
    accepted = await browser.post(link["url"], form={})
    assert accepted.code == 302
    async with YClient(server.ws_url(notebook_id), server.token("lee")) as lee_client:
        lee_client.notebook.ycells.append(new_cell("x", "nope"))
        await lee_client.wait_for(lambda: bool(lee_client.denied))
        revoke = await server.api("DELETE", f"/api/notebooks/{notebook_id}/links/{link['id']}")
        assert revoke.code == 204
        async with asyncio.timeout(5):
            await lee_client.closed.wait()
        assert lee_client.close_code == 4403
    gone = await browser.get(link["url"])
    assert gone.code == 404 and b"revoked" in gone.body


async def test_expired_share_link_is_refused(server: Server) -> None:
    from tests.webclient import WebClient

    notebook_id = await server.create_notebook("alice/brief.ipynb", editors=())
    link, code = server.services.sharing.create_link(
        notebook_id, Role.VIEWER, "alice", time.time() + 0.2
    )
    await wait_until(lambda: time.time() > link.expires_at + 0.01)  # type: ignore[operator]
    browser = WebClient(server.url)
    server.services.users.get_or_create("lee")
    await login_with_session(server, browser, "lee")
    page = await browser.get(f"/share/{code}")
    assert page.code == 404 and b"expired" in page.body
    response = await server.api("GET", f"/api/notebooks/{notebook_id}", user="lee")
    assert response.code == 404


async def test_owner_only_manages_shares(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/mine.ipynb", editors=("bob",))
    assert (await server.api("GET", f"/api/notebooks/{notebook_id}/shares", user="bob")).code == 403
    take = await server.api(
        "POST", f"/api/notebooks/{notebook_id}/shares", {"user": "bob", "role": "owner"}, user="bob"
    )
    assert take.code == 403
    moved = await server.api(
        "PATCH", "/api/contents/alice/mine.ipynb", {"path": "bob/mine.ipynb"}, user="bob"
    )
    assert moved.code == 403
    deleted = await server.api("DELETE", "/api/contents/alice/mine.ipynb", user="bob")
    assert deleted.code == 403
    created = await server.api(
        "PUT", "/api/contents/alice/planted.ipynb", {"type": "notebook"}, user="bob"
    )
    assert created.code == 403
    assert not (server.services.settings.root_dir / "alice" / "planted.ipynb").exists()
    bad_role = await server.api(
        "POST", f"/api/notebooks/{notebook_id}/shares", {"user": "bob", "role": "god"}
    )
    assert bad_role.code == 400 and b"role must be" in bad_role.body
    listing = json.loads((await server.api("GET", f"/api/notebooks/{notebook_id}/shares")).body)
    assert [(s["name"], s["role"]) for s in listing["shares"]] == [("bob", "editor")]


async def test_shared_with_me_lists_notebooks_and_roles(server: Server) -> None:
    first = await server.create_notebook("alice/a.ipynb", editors=("bob",))
    second = await server.create_notebook("carol/b.ipynb", editors=())
    server.services.users.create_group("readers")
    server.services.users.add_member("readers", "bob")
    await server.share(second, "readers", "viewer", owner="carol", group=True)
    response = await server.api("GET", "/api/shared", user="bob")
    shared = json.loads(response.body)["notebooks"]
    assert shared == [
        {"id": first, "path": "alice/a.ipynb", "role": "editor"},
        {"id": second, "path": "carol/b.ipynb", "role": "viewer"},
    ]


async def test_group_removal_by_another_process_reaches_open_sockets(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/group.ipynb", editors=())
    server.services.users.create_group("team")
    server.services.users.get_or_create("gus")
    server.services.users.add_member("team", "gus")
    await server.share(notebook_id, "team", "editor", group=True)
    async with YClient(server.ws_url(notebook_id), server.token("gus")) as gus:
        # Another process (the CLI) changes the database; only the epoch tells the server.
        from collab_server.database import open_engine
        from auth.users import Users

        engine = open_engine(server.services.settings.resolved_db_url())
        await asyncio.to_thread(Users(engine).remove_member, "team", "gus")
        engine.dispose()
        async with asyncio.timeout(5):
            await gus.closed.wait()
        assert gus.close_code == 4403


async def login_with_session(server: Server, browser: "WebClient", name: str) -> None:  # noqa: F821
    """Give the browser a real login session for ``name`` (the login forms have their own tests)."""
    from tornado.web import create_signed_value

    from collab_server.handlers.base import SESSION_COOKIE

    user = server.services.users.get(name)
    secret = server.services.sessions.create(user)
    value = create_signed_value(server.services.cookie_secret, SESSION_COOKIE, secret).decode()
    host = f"127.0.0.1:{server.port}"
    browser.cookies.setdefault(host, {})[SESSION_COOKIE] = value
    await browser.get("/login")  # picks up the _xsrf cookie as a page visit would
