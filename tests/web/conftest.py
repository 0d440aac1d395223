"""Fixtures for the browser tests: Debian's chromium driven by Playwright against a real
server (``make_server``) with real ipykernel kernels.

One chromium serves the whole session; each test gets fresh browser contexts (one per
person, each with its own cookie jar) and its own server, all closed after the test.

Event loops: Playwright's objects belong to the loop that started them, so the browser
lives in pytest-asyncio's session loop, and every test module here runs its tests in
that loop (``pytestmark = WEB``). Servers are started through ``make_server`` from
inside the test, so they also live in that loop, and ``web_server`` stops them there
(``make_server``'s own teardown, in its function loop, then finds them stopped).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Literal, Protocol

import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    ViewportSize,
    async_playwright,
    expect,
)

from collab_server.handlers.base import SESSION_COOKIE
from tests.conftest import Server, ServerFactory
from tests.server.test_roles import login_with_session
from tests.webclient import WebClient

#: Every test module in this folder: ``pytestmark = WEB``.
WEB = pytest.mark.asyncio(loop_scope="session")

#: Debian's chromium, installed by scripts/test (Playwright's own download cannot run here).
CHROMIUM = "/usr/bin/chromium"

#: UI changes that need only the server (sync, presence): generous for a loaded 2-core box.
UI_TIMEOUT = 20_000
#: Anything that waits on a kernel (the first run also starts it), in milliseconds.
KERNEL_TIMEOUT = 45_000

# Where the screenshot test writes; README's pictures are copies kept in docs/screenshots.
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or tempfile.gettempdir()) / "collab-screenshots"

expect.set_options(timeout=UI_TIMEOUT)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless chromium for the whole session (contexts isolate the tests)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: scripts/test installs Debian's chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox"],  # CI runs as root
        )
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope="session")
async def web_server(make_server: ServerFactory) -> AsyncIterator[ServerFactory]:
    """``make_server`` for browser tests: servers started in the test's loop, stopped there."""
    started: list[Server] = []

    async def start(**overrides: Any) -> Server:
        server = await make_server(**overrides)
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


#: The window most tests use; a phone is ``PHONE``.
DESKTOP: ViewportSize = {"width": 1280, "height": 860}
#: A phone held upright (an iPhone 14's CSS pixels).
PHONE: ViewportSize = {"width": 390, "height": 844}


class PersonFactory(Protocol):
    """``await person(server, "alice")``; ``viewport`` and ``color_scheme`` (the system's
    light or dark preference) set the browser window the person uses."""

    def __call__(
        self,
        server: Server,
        name: str,
        *,
        viewport: ViewportSize = ...,
        color_scheme: Literal["light", "dark"] = ...,
    ) -> Awaitable[BrowserContext]: ...


@pytest_asyncio.fixture(loop_scope="session")
async def person(browser: Browser) -> AsyncIterator[PersonFactory]:
    """``await person(server, "alice")``: a browser context logged in as alice.

    Each context has its own cookies: the real session cookie (as the login form
    would set it) and the ``_xsrf`` cookie the app's pages set. An uncaught error in
    any of its pages fails the test (after it ran, so the test's own failure comes first).
    """
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    async def log_in(
        server: Server,
        name: str,
        *,
        viewport: ViewportSize = DESKTOP,
        color_scheme: Literal["light", "dark"] = "light",
    ) -> BrowserContext:
        server.services.users.get_or_create(name)
        jar = WebClient(server.url)
        await login_with_session(server, jar, name)
        session = jar.cookie(SESSION_COOKIE)
        assert session is not None
        context = await browser.new_context(
            viewport=viewport,
            base_url=server.url,
            color_scheme=color_scheme,
        )
        contexts.append(context)
        context.set_default_timeout(UI_TIMEOUT)
        await context.add_cookies(
            [
                {
                    "name": SESSION_COOKIE,
                    "value": session,
                    "url": server.url,
                    "httpOnly": True,
                    "sameSite": "Lax",
                }
            ]
        )
        # Any page sets the _xsrf cookie that the app echoes on state-changing requests.
        response = await context.request.get("/login")
        assert response.ok, await response.text()
        names = {c["name"] for c in await context.cookies(server.url)}
        assert {SESSION_COOKIE, "_xsrf"} <= names, names
        context.on(
            "page",
            lambda page: page.on(
                "pageerror", lambda error: errors.append(f"{name} at {page.url}: {error}")
            ),
        )
        return context

    yield log_in
    for context in contexts:
        await context.close()
    assert not errors, "uncaught errors in the app's pages:\n" + "\n".join(errors)


async def open_notebook(context: BrowserContext, notebook_id: str) -> Page:
    """Open ``/notebooks/<id>`` in a new tab; return once it reads ``connected``."""
    page = await context.new_page()
    response = await page.goto(f"/notebooks/{notebook_id}")
    assert response is not None and response.ok, response and response.status
    await expect(page.get_by_test_id("connection")).to_have_text("connected")
    return page


def cell(page: Page, cell_id: str) -> Locator:
    return page.locator(f'[data-testid=cell][data-cell-id="{cell_id}"]')


def editor(page: Page, cell_id: str) -> Locator:
    """The CodeMirror content element of a cell: click it to type there."""
    return cell(page, cell_id).locator(".cm-content")


async def click_into(page: Page, cell_id: str) -> None:
    """Scroll to a cell and click into its editor, as a person does (far cells have none)."""
    await cell(page, cell_id).scroll_into_view_if_needed()
    await editor(page, cell_id).click()


async def human_click(page: Page, target: Locator) -> None:
    """Click ``target`` the way a person does: the button is held for a tenth of a second
    or so, long enough for the page to render what the press itself changed. Here the
    release waits for two rendered frames after the press (Playwright's own click
    releases at once), so a page that rebuilds the element under the pointer on
    pointerdown loses this click, as it would lose a person's."""
    await page.bring_to_front()  # a person clicks in the tab they are looking at
    await target.scroll_into_view_if_needed()
    box = await target.bounding_box()
    assert box is not None, f"{target} is not visible"
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.mouse.down()
    async with asyncio.timeout(UI_TIMEOUT / 1000):
        await page.evaluate(
            "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
        )
    await page.mouse.up()


async def editor_text(page: Page, cell_id: str) -> str:
    """The text a person reads in a cell's editor (other people's cursor labels left out)."""
    text: str = await editor(page, cell_id).evaluate(
        r"""content => {
            const copy = content.cloneNode(true);
            copy.querySelectorAll('.cm-ySelectionCaret, .cm-ySelectionInfo, .cm-widgetBuffer')
                .forEach(e => e.remove());
            return [...copy.querySelectorAll('.cm-line')]
                .map(line => line.textContent.replaceAll('\u2060', ''))
                .join('\n');
        }"""
    )
    return text


async def eventually(
    read: Callable[[], Awaitable[Any]], expected: Any, timeout: float = UI_TIMEOUT / 1000
) -> None:
    """Wait until ``await read()`` equals ``expected`` (for values no locator expresses)."""
    seen: Any = None
    try:
        async with asyncio.timeout(timeout):
            while (seen := await read()) != expected:
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"still {seen!r}, expected {expected!r}") from None


async def expect_cursor_of(page: Page, cell_id: str, name: str) -> None:
    """Someone else's cursor is in the cell (and only theirs), and pointing at it shows
    their name (y-codemirror.next shows the label on hover)."""
    caret = cell(page, cell_id).locator(".cm-ySelectionCaret")
    await expect(caret).to_have_count(1)
    await caret.hover()
    label = caret.locator(".cm-ySelectionInfo")
    await expect(label).to_have_text(name)
    await expect(label).to_have_css("opacity", "1")


def person_in(page: Page, username: str) -> Locator:
    """A person in the page's roster."""
    return page.get_by_test_id("roster").locator(
        f'[data-testid=person][data-username="{username}"]'
    )


def code(
    cell_id: str,
    source: str,
    outputs: list[dict[str, Any]] | None = None,
    execution_count: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": cell_id,
        "cell_type": "code",
        "metadata": metadata or {},
        "execution_count": execution_count,
        "source": source,
        "outputs": outputs or [],
    }


def markdown(cell_id: str, source: str) -> dict[str, Any]:
    return {"id": cell_id, "cell_type": "markdown", "metadata": {}, "source": source}


def notebook_of(*cells: dict[str, Any]) -> dict[str, Any]:
    """An nbformat 4.5 notebook holding ``cells``."""
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "cells": list(cells),
    }


async def notebook_on_server(
    server: Server, notebook_id: str, user: str = "alice"
) -> dict[str, Any]:
    """The notebook as it is now (the live document when open), downloaded through the API."""
    response = await server.api("GET", f"/api/notebooks/{notebook_id}?download=1", user=user)
    assert response.code == 200, response.body
    notebook: dict[str, Any] = json.loads(response.body)
    return notebook


def source_of(notebook: dict[str, Any], cell_id: str) -> str:
    for c in notebook["cells"]:
        if c["id"] == cell_id:
            source = c["source"]
            return "".join(source) if isinstance(source, list) else str(source)
    raise KeyError(cell_id)


async def wait_for_source(
    server: Server,
    notebook_id: str,
    cell_id: str,
    expected: str,
    user: str = "alice",
    timeout: float = 20,
) -> None:
    """Wait until the server's document holds ``expected`` as the cell's source."""

    async def on_server() -> str:
        return source_of(await notebook_on_server(server, notebook_id, user), cell_id)

    await eventually(on_server, expected, timeout)
