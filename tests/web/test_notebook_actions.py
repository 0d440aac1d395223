"""Rename and Share from inside the notebook, as an owner: the new name reaches every open
tab, the share dialog opens in place; collaborators without the owner role see neither."""

from __future__ import annotations

from playwright.async_api import expect

from tests.conftest import ServerFactory

from .conftest import WEB, PersonFactory, code, notebook_of, open_notebook

pytestmark = WEB


async def test_the_owner_renames_and_shares_from_the_notebook(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    server = await web_server()
    notebook_id = await server.create_notebook(
        "alice/draft.ipynb", notebook_of(code("a", "1 + 1")), editors=("bob",)
    )
    server.services.users.get_or_create("carol")
    alice = await open_notebook(await person(server, "alice"), notebook_id)
    bob = await open_notebook(await person(server, "bob"), notebook_id)
    await expect(bob.get_by_test_id("rename-notebook")).to_be_hidden()
    await expect(bob.get_by_test_id("share-notebook")).to_be_hidden()

    await alice.get_by_test_id("rename-notebook").click()
    field = alice.get_by_test_id("rename-field")
    await expect(field).to_be_focused()
    await alice.keyboard.type("final report")  # the stem is selected: typing replaces it
    await alice.keyboard.press("Enter")
    await expect(alice.get_by_test_id("rename-dialog")).to_have_count(0)
    for page in (alice, bob):
        await expect(page.get_by_test_id("notebook-name")).to_have_text("final report.ipynb")
    root = server.services.settings.root_dir / "alice"
    assert (root / "final report.ipynb").exists() and not (root / "draft.ipynb").exists()

    # A name that is taken is refused in the dialog, which stays open.
    await server.create_notebook("alice/taken.ipynb", editors=())
    await alice.get_by_test_id("rename-notebook").click()
    await alice.keyboard.type("taken")
    await alice.keyboard.press("Enter")
    await expect(alice.get_by_test_id("rename-error")).to_contain_text("already exists")
    await alice.get_by_test_id("rename-cancel").click()
    await expect(alice.get_by_test_id("notebook-name")).to_have_text("final report.ipynb")

    await alice.get_by_test_id("share-notebook").click()
    dialog = alice.get_by_test_id("share-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator('[data-testid=share-entry][data-name="bob"]')).to_be_visible()
    await dialog.get_by_test_id("share-name").fill("carol")
    await dialog.get_by_test_id("share-add").click()
    await expect(dialog.locator('[data-testid=share-entry][data-name="carol"]')).to_have_attribute(
        "data-role", "viewer"
    )
    shares = server.services.sharing.list_shares(notebook_id)
    assert sorted((s.name, s.role) for s in shares) == [("bob", "editor"), ("carol", "viewer")]
