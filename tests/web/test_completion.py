"""Tab completes from the shared kernel and Shift+Tab shows its help, as in JupyterLab:
a popup driven from the keyboard, a tooltip Escape puts away, indenting where there is
no name before the cursor, and nothing of it for viewers."""

from __future__ import annotations

from playwright.async_api import Locator, Page, expect

from tests.conftest import ServerFactory

from .conftest import (
    KERNEL_TIMEOUT,
    WEB,
    PersonFactory,
    cell,
    click_into,
    code,
    editor,
    editor_text,
    eventually,
    notebook_of,
    open_notebook,
    wait_for_source,
)

pytestmark = WEB


def popup(page: Page) -> Locator:
    return page.locator(".cm-tooltip-autocomplete")


async def test_tab_completes_what_a_collaborators_run_defined(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    server = await web_server()
    notebook_id = await server.create_notebook(
        "alice/visits.ipynb",
        notebook_of(code("setup", "visits_per_city = {'Lisbon': 1204}"), code("use", "")),
        editors=("bob",),
    )
    alice = await open_notebook(await person(server, "alice"), notebook_id)
    await click_into(alice, "setup")
    await alice.keyboard.press("Shift+Enter")
    await expect(cell(alice, "setup").get_by_test_id("execution-count")).to_have_text(
        "In [1]:", timeout=KERNEL_TIMEOUT
    )

    # Bob, in his own browser, completes the name alice's run defined.
    bob = await open_notebook(await person(server, "bob"), notebook_id)
    await click_into(bob, "use")
    await bob.keyboard.type("total = visits_per")
    await bob.keyboard.press("Tab")
    option = popup(bob).get_by_role("option", name="visits_per_city")
    await expect(option).to_be_visible(timeout=KERNEL_TIMEOUT)
    await bob.keyboard.press("Enter")
    await expect(popup(bob)).to_have_count(0)
    await eventually(lambda: editor_text(bob, "use"), "total = visits_per_city")
    await wait_for_source(server, notebook_id, "use", "total = visits_per_city")
    # Still typing in the same cell: Enter took the completion, not a new line.
    await bob.keyboard.type("['Lisbon']")
    await eventually(lambda: editor_text(bob, "use"), "total = visits_per_city['Lisbon']")

    # Arrows move in the popup of a one-line cell instead of leaving it; Escape closes
    # the popup and keeps the editor, a second Escape is command mode.
    await bob.keyboard.press("Enter")
    await bob.keyboard.type("pr")
    await bob.keyboard.press("Tab")
    await expect(popup(bob).get_by_role("option", name="print")).to_be_visible(timeout=KERNEL_TIMEOUT)
    first = await popup(bob).get_by_role("option", selected=True).text_content()
    await bob.keyboard.press("ArrowDown")
    await expect(popup(bob).get_by_role("option", selected=True)).not_to_have_text(first or "")
    await bob.keyboard.press("Escape")
    await expect(popup(bob)).to_have_count(0)
    await expect(editor(bob, "use")).to_be_focused()
    await bob.keyboard.press("Escape")
    await expect(cell(bob, "use")).to_be_focused()


async def test_shift_tab_shows_help_and_tab_at_a_line_start_indents(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    server = await web_server()
    notebook_id = await server.create_notebook(
        "alice/help.ipynb", notebook_of(code("a", "")), editors=()
    )
    page = await open_notebook(await person(server, "alice"), notebook_id)
    await click_into(page, "a")
    await page.keyboard.type("len")
    await page.keyboard.press("Shift+Tab")
    tooltip = page.get_by_test_id("inspect-tooltip")
    await expect(tooltip).to_contain_text("Return the number of items", timeout=KERNEL_TIMEOUT)
    # On the page, not inside the cell, which clips what overflows it: the whole help shows.
    assert await tooltip.evaluate("el => el.closest('[data-testid=cell]') === null")
    await page.keyboard.press("Escape")
    await expect(tooltip).to_have_count(0)
    await expect(editor(page, "a")).to_be_focused()

    # Typing puts the help away too.
    await page.keyboard.press("Shift+Tab")
    await expect(tooltip).to_be_visible(timeout=KERNEL_TIMEOUT)
    await page.keyboard.type("(")
    await expect(tooltip).to_have_count(0)

    # No name before the cursor: Tab indents, Shift+Tab dedents.
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Delete")
    await page.keyboard.press("Tab")
    await page.keyboard.type("x")
    await eventually(lambda: editor_text(page, "a"), "    x")
    await page.keyboard.press("Home")
    await page.keyboard.press("Shift+Tab")
    await eventually(lambda: editor_text(page, "a"), "x")
    await expect(popup(page)).to_have_count(0)


async def test_a_viewers_tab_asks_the_kernel_nothing(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    server = await web_server()
    notebook_id = await server.create_notebook(
        "alice/shown.ipynb", notebook_of(code("a", "pri")), editors=()
    )
    await server.share(notebook_id, "victor", "viewer")
    page = await open_notebook(await person(server, "victor"), notebook_id)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/complete" in r.url or "/inspect" in r.url else None)
    await click_into(page, "a")
    await page.keyboard.press("End")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Shift+Tab")
    await expect(popup(page)).to_have_count(0)
    await expect(page.get_by_test_id("inspect-tooltip")).to_have_count(0)
    assert asked == []
    assert await editor_text(page, "a") == "pri"
