"""The pages: app shells and their starting data, error pages, the sandbox frame, headers."""

from __future__ import annotations

import json
import re
import urllib.parse

from tests.conftest import Server
from tests.webclient import WebClient

from .test_roles import login_with_session


async def test_app_pages_need_login_and_carry_their_starting_data(server: Server) -> None:
    anonymous = await WebClient(server.url).get("/")
    assert anonymous.code == 302 and anonymous.headers["Location"] == "/login?next=%2F"
    notebook_id = await server.create_notebook("carol/theirs.ipynb", editors=())
    await server.share(notebook_id, "alice", "viewer", owner="carol")
    browser = WebClient(server.url)
    server.services.users.get_or_create("alice")
    await login_with_session(server, browser, "alice")
    page = await browser.get(f"/notebooks/{notebook_id}")
    assert page.code == 200
    boot = json.loads(re.search(rb'<script type="application/json" id="boot">(.*?)</script>', page.body, re.S).group(1))  # type: ignore[union-attr]
    assert boot["user"]["name"] == "alice"
    assert boot["notebook"] == {"id": notebook_id, "path": "carol/theirs.ipynb", "role": "viewer"}
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    hidden = await server.create_notebook("carol/private.ipynb", editors=())
    refused = await browser.get(f"/notebooks/{hidden}")
    assert refused.code == 404 and b"no notebook" in refused.body


async def test_boot_data_cannot_break_out_of_its_script_block(server: Server) -> None:
    # A folder "a<" holding "script><img ...>.ipynb": the path reads "a</script><img ...>".
    made = await server.api("PUT", "/api/contents/alice/a%3C", {"type": "directory"})
    assert made.code == 201, made.body
    path = urllib.parse.quote("alice/a</script><img src=x onerror=alert(1)>.ipynb")
    created = await server.api("PUT", f"/api/contents/{path}", {"type": "notebook"})
    assert created.code == 201, created.body
    notebook_id = json.loads(created.body)["id"]
    browser = WebClient(server.url)
    await login_with_session(server, browser, "alice")
    page = await browser.get(f"/notebooks/{notebook_id}")
    assert page.code == 200
    assert b"</script><img" not in page.body and b"onerror=alert(1)>" not in page.body
    boot = re.search(rb'id="boot">(.*?)</script>', page.body, re.S)
    assert boot is not None
    assert json.loads(boot.group(1))["notebook"]["path"].endswith("<img src=x onerror=alert(1)>.ipynb")


async def test_sandbox_frame_is_sandboxed_even_when_opened_directly(server: Server) -> None:
    page = await WebClient(server.url).get("/sandbox")
    assert page.code == 200
    csp = page.headers["Content-Security-Policy"]
    assert csp.startswith("sandbox allow-scripts;") and "allow-same-origin" not in csp
    assert "default-src 'none'" in csp


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
