"""The notebook list page (``/``): making, renaming, entering and deleting a folder with
the keyboard and the mouse, as a person does, checked against what the server holds."""

from __future__ import annotations

import json

from playwright.async_api import expect

from tests.conftest import Server, ServerFactory

from .conftest import WEB, PersonFactory, notebook_of

pytestmark = WEB


async def folder_names(server: Server, path: str) -> list[str]:
    """The names in a folder, as the server lists them to alice."""
    response = await server.api("GET", f"/api/contents/{path}")
    assert response.code == 200, response.body
    return [e["name"] for e in json.loads(response.body)["content"]]


async def test_make_rename_enter_and_delete_a_folder(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    server = await web_server()
    await server.create_notebook("alice/first.ipynb", notebook_of(), editors=())
    page = await (await person(server, "alice")).new_page()
    await page.goto("/")
    await expect(page.get_by_test_id("current-folder")).to_have_text("alice (yours)")
    first = page.locator('[data-testid=notebook-row][data-path="alice/first.ipynb"]')
    await expect(first).to_be_visible()

    # "New folder" makes one and opens its name for editing; Enter saves the new name.
    await page.get_by_test_id("new-folder").click()
    rename = page.get_by_test_id("rename-input")
    await expect(rename).to_be_focused()
    await expect(rename).to_have_value("Untitled Folder")
    await rename.fill("data")
    await rename.press("Enter")
    folder = page.locator('[data-testid=folder-row][data-path="alice/data"]')
    await expect(folder).to_be_visible()
    await expect(page.get_by_test_id("flash")).to_contain_text("Renamed Untitled Folder to data.")
    assert sorted(await folder_names(server, "alice")) == ["data", "first.ipynb"]

    # Esc cancels a rename: nothing changes.
    await folder.get_by_test_id("rename").click()
    await page.get_by_test_id("rename-input").fill("other")
    await page.get_by_test_id("rename-input").press("Escape")
    await expect(page.get_by_test_id("rename-input")).to_have_count(0)
    await expect(folder).to_be_visible()

    # Into the folder and back through the breadcrumbs (the address follows).
    await folder.get_by_test_id("open").click()
    await expect(page.get_by_test_id("current-folder")).to_have_text("data")
    await expect(page.get_by_test_id("empty-folder")).to_be_visible()
    assert page.url.endswith("/?path=alice%2Fdata")
    await page.get_by_role("link", name="alice (yours)").click()
    await expect(page.get_by_test_id("current-folder")).to_have_text("alice (yours)")
    await page.go_back()
    await expect(page.get_by_test_id("current-folder")).to_have_text("data")
    await page.go_back()

    # Delete asks first; Cancel keeps it, Delete removes it for good.
    await folder.get_by_test_id("delete").click()
    await page.get_by_test_id("confirm-cancel").click()
    await expect(folder).to_be_visible()
    await folder.get_by_test_id("delete").click()
    await page.get_by_test_id("confirm-ok").click()
    await expect(folder).to_have_count(0)
    await expect(page.get_by_test_id("flash")).to_contain_text("Moved data to the Trash.")
    assert await folder_names(server, "alice") == ["first.ipynb"]
