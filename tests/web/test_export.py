"""Downloading a notebook from the notebook page and from the list: as it is now (typing
not yet saved included), without outputs for version control, as a script, as HTML."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.async_api import Locator, Page, expect

from tests.conftest import ServerFactory

from .conftest import (
    WEB,
    PersonFactory,
    click_into,
    code,
    markdown,
    notebook_of,
    open_notebook,
    wait_for_source,
)

pytestmark = WEB

RESULT = {"output_type": "execute_result", "execution_count": 4, "metadata": {},
          "data": {"text/plain": "2077"}}


async def download_from(page: Page, scope: Page | Locator, format: str) -> str:
    """Open the Download menu in ``scope``, pick ``format``: the file's name, a newline, its text."""
    menu = scope.get_by_test_id("download-menu")
    await menu.get_by_test_id("download").click()
    link = menu.get_by_test_id(f"download-{format}")
    await expect(link).to_be_visible()
    async with page.expect_download() as info:
        await link.click()
    download = await info.value
    await expect(link).to_be_hidden()  # the menu closes once a form is picked
    return f"{download.suggested_filename}\n{Path(await download.path()).read_text()}"


async def test_the_notebook_downloads_as_it_is_now_in_each_form(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    server = await web_server()
    notebook_id = await server.create_notebook(
        "alice/visits.ipynb",
        notebook_of(
            markdown("title", "# Visits per city"),
            code("sum", "total = 1204 + 873\ntotal", outputs=[RESULT], execution_count=4),
        ),
        editors=(),
    )
    context = await person(server, "alice")
    page = await open_notebook(context, notebook_id)
    await click_into(page, "sum")
    await page.keyboard.press("Control+End")
    await page.keyboard.type("  # checked")
    await wait_for_source(server, notebook_id, "sum", "total = 1204 + 873\ntotal  # checked")

    name, text = (await download_from(page, page, "stripped")).split("\n", 1)
    assert name == "visits.ipynb"
    stripped = json.loads(text)
    [cell] = [c for c in stripped["cells"] if c["id"] == "sum"]
    assert "".join(cell["source"]) == "total = 1204 + 873\ntotal  # checked"  # not yet saved
    assert cell["outputs"] == [] and cell["execution_count"] is None

    name, text = (await download_from(page, page, "script")).split("\n", 1)
    assert name == "visits.py"
    assert "total  # checked" in text and "# # Visits per city" in text

    await page.goto("/")
    row = page.locator('[data-testid=notebook-row][data-path="alice/visits.ipynb"]')
    await expect(row).to_be_visible()
    name, text = (await download_from(page, row, "html")).split("\n", 1)
    assert name == "visits.html"
    assert "Visits per city" in text and "2077" in text and "checked" in text

    name, text = (await download_from(page, row, "ipynb")).split("\n", 1)
    assert name == "visits.ipynb"
    [cell] = [c for c in json.loads(text)["cells"] if c["id"] == "sum"]
    assert cell["outputs"][0]["data"]["text/plain"] in ("2077", ["2077"])


async def test_a_viewer_downloads_too_and_escape_closes_the_menu(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    server = await web_server()
    notebook_id = await server.create_notebook(
        "alice/shared.ipynb", notebook_of(code("a", "print('hi')")), editors=()
    )
    await server.share(notebook_id, "victor", "viewer")
    context = await person(server, "victor")
    page = await open_notebook(context, notebook_id)
    menu = page.get_by_test_id("download-menu")
    await menu.get_by_test_id("download").click()
    await expect(menu.get_by_test_id("download-html")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(menu.get_by_test_id("download-html")).to_be_hidden()
    name, text = (await download_from(page, page, "script")).split("\n", 1)
    assert name == "shared.py" and "print('hi')" in text
