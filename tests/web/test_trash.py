"""Deleting from the list moves to the Trash, which says for how long; Restore brings the
notebook back where it was (same id, shared as it was), Delete for good asks first."""

from __future__ import annotations

from playwright.async_api import expect

from tests.conftest import ServerFactory

from .conftest import WEB, PersonFactory, code, notebook_of

pytestmark = WEB


async def test_delete_restore_and_delete_for_good_from_the_list(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    server = await web_server()
    notebook_id = await server.create_notebook(
        "alice/report.ipynb", notebook_of(code("a", "print('kept')")), editors=("bob",)
    )
    await server.create_notebook("alice/scratch.ipynb", notebook_of(code("b", "")), editors=())
    page = await (await person(server, "alice")).new_page()
    await page.goto("/")
    report = page.locator('[data-testid=notebook-row][data-path="alice/report.ipynb"]')
    await expect(report).to_be_visible()
    await expect(page.get_by_test_id("trash-panel")).to_contain_text("Trash")

    await report.get_by_test_id("delete").click()
    dialog = page.get_by_test_id("confirm-dialog")
    await expect(dialog).to_contain_text("It goes to your Trash, where you can restore it")
    await expect(dialog).to_contain_text("for 30 days")
    await page.get_by_test_id("confirm-ok").click()
    await expect(report).to_have_count(0)
    await expect(page.get_by_test_id("flash")).to_contain_text("Moved report.ipynb to the Trash.")
    item = page.get_by_test_id("trash-item").filter(has_text="report.ipynb")
    await expect(item).to_be_visible()  # the panel opened to show it
    await expect(item).to_contain_text("from alice, deleted by alice")
    await expect(page.get_by_test_id("trash-count")).to_have_text("(1)")
    await expect(page.get_by_test_id("trash-note")).to_have_text(
        "Deleted items are kept 30 days, then deleted for good."
    )

    await item.get_by_test_id("restore").click()
    await expect(report).to_be_visible()
    await expect(report.get_by_test_id("open")).to_have_attribute("href", f"/notebooks/{notebook_id}")
    await expect(page.get_by_test_id("trash-item")).to_have_count(0)
    await expect(page.get_by_test_id("trash-note")).to_have_text("The trash is empty.")
    shares = server.services.sharing.list_shares(notebook_id)
    assert [(s.name, s.role) for s in shares] == [("bob", "editor")]

    scratch = page.locator('[data-testid=notebook-row][data-path="alice/scratch.ipynb"]')
    await scratch.get_by_test_id("delete").click()
    await page.get_by_test_id("confirm-ok").click()
    item = page.get_by_test_id("trash-item").filter(has_text="scratch.ipynb")
    await item.get_by_test_id("delete-for-good").click()
    await expect(dialog).to_contain_text("This cannot be undone.")
    await page.get_by_test_id("confirm-ok").click()
    await expect(page.get_by_test_id("trash-item")).to_have_count(0)
    await expect(page.get_by_test_id("flash")).to_contain_text("Deleted scratch.ipynb for good.")
    assert not any(server.services.settings.root_dir.glob("alice/.trash/*"))
