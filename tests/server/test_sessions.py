"""Browser sessions: server-side logout, expiry, XSRF on every state change, the
WebSocket Origin allowlist, and where ``next=`` may send the browser."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse

import pytest
from sqlalchemy import update

from auth.schema import sessions
from collab_server.handlers.base import SESSION_COOKIE
from collab_server.redirects import safe_next
from tests.conftest import Server, ServerFactory
from tests.webclient import WebClient
from tests.yclient import YClient

from .test_roles import login_with_session


async def browser_for(server: Server, name: str = "alice") -> WebClient:
    server.services.users.get_or_create(name)
    browser = WebClient(server.url)
    await login_with_session(server, browser, name)
    return browser


def cookie_header(browser: WebClient, server: Server) -> str:
    jar = browser.cookies[f"127.0.0.1:{server.port}"]
    return "; ".join(f"{k}={v}" for k, v in jar.items())


async def test_logout_ends_the_session_on_the_server(server: Server) -> None:
    browser = await browser_for(server)
    copy = dict(browser.cookies[f"127.0.0.1:{server.port}"])  # a stolen copy of the cookie
    me = await browser.get("/api/user")
    assert me.code == 200 and json.loads(me.body)["name"] == "alice"
    out = await browser.post("/logout", form={})
    assert out.code == 302 and out.headers["Location"] == "/login"
    assert SESSION_COOKIE not in browser.cookies[f"127.0.0.1:{server.port}"]
    thief = WebClient(server.url)
    thief.cookies[f"127.0.0.1:{server.port}"] = copy
    assert (await thief.get("/api/user")).code == 401


async def test_logout_everywhere_ends_every_session(server: Server) -> None:
    laptop, phone = await browser_for(server), await browser_for(server)
    out = await laptop.post("/logout", form={"everywhere": "1"})
    assert out.code == 302
    assert (await phone.get("/api/user")).code == 401


async def test_expired_session_is_refused(server: Server) -> None:
    browser = await browser_for(server)
    with server.services.db.begin() as conn:
        conn.execute(update(sessions).values(expires_at=time.time() - 1))
    assert (await browser.get("/api/user")).code == 401
    page = await browser.get("/")
    assert page.code == 302 and page.headers["Location"].startswith("/login?next=")


async def test_forged_cookie_is_refused(server: Server) -> None:
    browser = await browser_for(server)
    jar = browser.cookies[f"127.0.0.1:{server.port}"]
    jar[SESSION_COOKIE] = jar[SESSION_COOKIE][:-4] + "AAAA"
    assert (await browser.get("/api/user")).code == 401


async def test_cross_site_post_without_xsrf_token_is_refused(server: Server) -> None:
    browser = await browser_for(server)
    # A form on evil.test posting to us carries the cookie but not the _xsrf value.
    forged = await browser.request(
        "PUT",
        "/api/contents/alice/forged.ipynb",
        body=json.dumps({"type": "notebook"}),
        xsrf=False,
        headers={"Origin": "http://evil.test"},
    )
    assert forged.code == 403 and b"_xsrf" in forged.body
    assert not (server.services.settings.root_dir / "alice" / "forged.ipynb").exists()
    logout = await browser.post("/logout", form={}, xsrf=False)
    assert logout.code == 403
    assert (await browser.get("/api/user")).code == 200
    # The app's own pages send the token and succeed.
    made = await browser.request(
        "PUT", "/api/contents/alice/real.ipynb", body=json.dumps({"type": "notebook"})
    )
    assert made.code == 201
    # Scripts with a token header carry no ambient credentials: no XSRF needed.
    scripted = await server.api("PUT", "/api/contents/alice/script.ipynb", {"type": "notebook"})
    assert scripted.code == 201


async def test_bad_token_header_is_not_rescued_by_the_cookie(server: Server) -> None:
    browser = await browser_for(server)
    response = await browser.get("/api/user", headers={"Authorization": "token wrong"})
    assert response.code == 401


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.test",
        "http://127.0.0.1:{port}.evil.test",
        "http://127.0.0.1.evil.test:{port}",
        "https://127.0.0.1:{port}",
        "http://127.0.0.1:{port}@evil.test",
        "null",
        None,
    ],
)
async def test_cross_site_websocket_with_cookie_is_refused(server: Server, origin: str | None) -> None:
    notebook_id = await server.create_notebook("alice/ws.ipynb", editors=())
    browser = await browser_for(server)
    headers = {"Cookie": cookie_header(browser, server)}
    if origin is not None:
        headers["Origin"] = origin.format(port=server.port)
    client = YClient(server.ws_url(notebook_id), None, headers=headers)
    with pytest.raises(Exception, match="403"):
        await client.connect()


async def test_same_origin_and_allowlisted_websockets_with_cookie_connect(
    make_server: ServerFactory,
) -> None:
    server = await make_server(allowed_origins=frozenset({"https://notebooks.example.org"}))
    notebook_id = await server.create_notebook("alice/ok.ipynb", editors=())
    browser = await browser_for(server)
    for origin in (f"http://127.0.0.1:{server.port}", "https://notebooks.example.org"):
        headers = {"Cookie": cookie_header(browser, server), "Origin": origin}
        async with YClient(server.ws_url(notebook_id), None, headers=headers) as client:
            assert client.sources() == [""]
    for near_miss in ("https://notebooks.example.org.evil.test", "https://evil-notebooks.example.org"):
        headers = {"Cookie": cookie_header(browser, server), "Origin": near_miss}
        with pytest.raises(Exception, match="403"):
            await YClient(server.ws_url(notebook_id), None, headers=headers).connect()


async def test_logout_closes_the_sessions_open_sockets(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/live.ipynb", editors=())
    browser = await browser_for(server)
    headers = {"Cookie": cookie_header(browser, server), "Origin": server.url}
    async with YClient(server.ws_url(notebook_id), None, headers=headers) as client:
        await browser.post("/logout", form={})
        async with asyncio.timeout(5):
            await client.closed.wait()
        assert client.close_code == 4401


async def test_revoked_token_closes_its_sockets(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/tok.ipynb", editors=())
    token = server.services.tokens.create("alice", note="script")
    token_id = server.services.tokens.list_tokens("alice")[-1].id
    async with YClient(server.ws_url(notebook_id), token) as client:
        server.services.tokens.revoke(token_id)  # as the CLI would, from outside
        async with asyncio.timeout(5):
            await client.closed.wait()
        assert client.close_code == 4401


OPEN_REDIRECTS = [
    "//evil.test",
    "/\\evil.test",
    "\\/evil.test",
    "https:///evil.test",
    "https://evil.test",
    "http:evil.test",
    "javascript:alert(1)",
    "/%2F%2Fevil.test",
    "%2F%2Fevil.test",
    "/%5Cevil.test",
    "/%252F%252Fevil.test",
    "/\t/evil.test",
    "/%09/evil.test",
    " //evil.test",
    "///evil.test",
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_next_never_leaves_the_site(target: str) -> None:
    assert safe_next(target) == "/"


def test_next_keeps_same_site_paths() -> None:
    for target in ("/", "/share/abc", "/a/b?c=1&d=%2F#x", "/my%20notebook"):
        assert safe_next(target) == target


@pytest.mark.parametrize("target", OPEN_REDIRECTS[:6])
async def test_login_page_redirects_only_within_the_site(server: Server, target: str) -> None:
    browser = await browser_for(server)
    response = await browser.get("/login?next=" + urllib.parse.quote(target, safe=""))
    assert response.code == 302 and response.headers["Location"] == "/"


async def test_next_is_escaped_in_the_login_page(make_server: ServerFactory) -> None:
    from auth.pam import PAMAuthenticator

    server = await make_server(authenticators=[PAMAuthenticator()])
    payload = '/x"><script>alert(1)</script>'
    response = await WebClient(server.url).get("/login?next=" + urllib.parse.quote(payload))
    assert response.code == 200
    assert b"<script>alert(1)" not in response.body
    assert b"&lt;script&gt;" in response.body or b"%3Cscript%3E" in response.body
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
