"""The plain pages: start page, error pages, and their security headers."""

from __future__ import annotations

from tests.conftest import Server
from tests.webclient import WebClient

from .test_roles import login_with_session


async def test_start_page_needs_login_and_lists_own_and_shared_notebooks(server: Server) -> None:
    anonymous = await WebClient(server.url).get("/")
    assert anonymous.code == 302 and anonymous.headers["Location"] == "/login?next=%2F"
    await server.create_notebook("alice/mine.ipynb", editors=())
    shared = await server.create_notebook("carol/theirs.ipynb", editors=())
    await server.share(shared, "alice", "viewer", owner="carol")
    browser = WebClient(server.url)
    server.services.users.get_or_create("alice")
    await login_with_session(server, browser, "alice")
    page = await browser.get("/")
    assert page.code == 200
    text = page.body.decode()
    assert "mine.ipynb" in text and "carol/theirs.ipynb" in text and "viewer" in text
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"


async def test_unknown_pages_and_apis_get_clear_errors(server: Server) -> None:
    browser = WebClient(server.url)
    page = await browser.get("/no/such/page")
    assert page.code == 404 and b"There is no page at this address." in page.body
    assert page.headers["Content-Type"].startswith("text/html")
    api = await browser.get("/api/nothing-here")
    assert api.code == 404 and api.headers["Content-Type"].startswith("application/json")


async def test_error_page_escapes_what_it_shows(server: Server) -> None:
    browser = WebClient(server.url)
    page = await browser.get("/%3Cscript%3Ealert(1)%3C/script%3E")
    assert page.code == 404 and b"<script>alert(1)" not in page.body
