"""Outputs people actually produce, seen by someone else in their own browser.

Alice runs real code in a real kernel (matplotlib and pandas, from the test
extras); Bob, in another browser, sees a PNG plot as a decoded image, an SVG
figure and a DataFrame table inside the sandboxed output frame, and a
widget's output as its text fallback (widgets are not supported). All of it
is in the shared document: it survives Bob reloading and Alice closing her tab.
A notebook rebuilt from the history shows the same plot and table.
"""

from __future__ import annotations

import re

from playwright.async_api import FrameLocator, Page, expect

from tests.conftest import ServerFactory

from .conftest import (
    KERNEL_TIMEOUT,
    WEB,
    PersonFactory,
    cell,
    click_into,
    code,
    eventually,
    notebook_of,
    open_notebook,
)

pytestmark = WEB

PLOT = """\
%matplotlib inline
import matplotlib.pyplot as plt
plt.plot([1, 4, 2, 3])
plt.title("rain")
plt.show()"""
SVG = """\
%config InlineBackend.figure_formats = ['svg']
plt.plot([3, 1, 2])
plt.show()"""
TABLE = """\
import pandas as pd
pd.DataFrame({"city": ["Lyon", "Oslo"], "rain_mm": [832, 763]})"""
# What ipywidgets sends for IntSlider(value=3): the widget view, and text for
# front ends without the widget manager.
WIDGET = """\
from IPython.display import display
display({
    "application/vnd.jupyter.widget-view+json": {
        "model_id": "0123456789abcdef", "version_major": 2, "version_minor": 0},
    "text/plain": "IntSlider(value=3)",
}, raw=True)"""
CELLS = [("plot", PLOT), ("svg", SVG), ("table", TABLE), ("widget", WIDGET)]


def output_frame(page: Page, cell_id: str) -> FrameLocator:
    return cell(page, cell_id).frame_locator("[data-testid=output-frame]")


async def expect_plot(page: Page, cell_id: str, timeout: float) -> None:
    """The cell shows one PNG image, decoded (it has a size of its own)."""
    image = cell(page, cell_id).get_by_test_id("outputs").locator("img")
    await expect(image).to_have_count(1, timeout=timeout)
    await expect(image).to_have_attribute(
        "src", re.compile(r"^data:image/png;base64,iVBOR"), timeout=timeout
    )
    await image.scroll_into_view_if_needed()
    decoded = "img => img.complete && img.naturalWidth > 0 && img.naturalHeight > 0"
    await eventually(lambda: image.evaluate(decoded), True)


async def expect_table(page: Page, cell_id: str, timeout: float) -> None:
    """The cell's sandboxed frame shows the DataFrame as a table holding its values."""
    await cell(page, cell_id).scroll_into_view_if_needed()
    table = output_frame(page, cell_id).locator("table.dataframe")
    await expect(table).to_have_count(1, timeout=timeout)
    rows = table.locator("tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0).locator("td")).to_have_text(["Lyon", "832"])
    await expect(rows.nth(1).locator("td")).to_have_text(["Oslo", "763"])
    await expect(table.locator("thead th")).to_contain_text(["city", "rain_mm"])


async def expect_rich_outputs(page: Page, timeout: float = 20_000) -> None:
    """What a person sees in each cell: a decoded plot, an SVG, a table, the widget's text."""
    await expect_plot(page, "plot", timeout)

    await cell(page, "svg").scroll_into_view_if_needed()
    figure = output_frame(page, "svg").locator("svg")
    await expect(figure).to_have_count(1, timeout=timeout)
    await expect(figure.locator("path").first).to_be_attached()
    assert (await figure.bounding_box() or {}).get("width", 0) > 0

    await expect_table(page, "table", timeout)

    widget = cell(page, "widget").get_by_test_id("outputs")
    await expect(widget.locator(".output pre")).to_have_text("IntSlider(value=3)", timeout=timeout)
    await expect(widget.locator("iframe, img")).to_have_count(0)


async def run_one_by_one(page: Page, cell_ids: list[str]) -> None:
    """Shift+Enter in each cell, waiting for each run to end (later cells use earlier ones)."""
    for cell_id in cell_ids:
        await click_into(page, cell_id)
        await page.keyboard.press("Shift+Enter")
        await expect(cell(page, cell_id).get_by_test_id("execution-count")).to_have_text(
            re.compile(r"In \[\d+\]:"), timeout=KERNEL_TIMEOUT
        )


async def test_bob_sees_alices_plots_and_tables_and_they_stay_after_reload_and_her_leaving(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    server = await web_server()
    notebook_id = await server.create_notebook(
        "alice/rain.ipynb",
        notebook_of(*(code(cell_id, source) for cell_id, source in CELLS)),
        editors=("bob",),
    )
    alice = await open_notebook(await person(server, "alice"), notebook_id)
    bob = await open_notebook(await person(server, "bob"), notebook_id)

    await run_one_by_one(alice, [cell_id for cell_id, _ in CELLS])
    await expect_rich_outputs(bob, timeout=KERNEL_TIMEOUT)
    await expect_rich_outputs(alice)

    await bob.reload()
    await expect(bob.get_by_test_id("connection")).to_have_text("connected")
    await expect_rich_outputs(bob)

    await alice.close()
    await bob.reload()
    await expect(bob.get_by_test_id("connection")).to_have_text("connected")
    await expect_rich_outputs(bob)


async def test_a_notebook_rebuilt_from_the_history_shows_the_plot_and_the_table(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    server = await web_server()
    notebook_id = await server.create_notebook(
        "alice/rain.ipynb", notebook_of(code("plot", PLOT), code("table", TABLE)), editors=()
    )
    context = await person(server, "alice")
    alice = await open_notebook(context, notebook_id)
    await run_one_by_one(alice, ["plot", "table"])

    await alice.get_by_test_id("history-toggle").click()
    history = alice.get_by_test_id("history")
    runs = {}
    for cell_id in ("plot", "table"):
        row = history.locator(f'[data-testid=history-row][data-cell-id="{cell_id}"]')
        await expect(row).to_have_attribute("data-status", "ok", timeout=KERNEL_TIMEOUT)
        runs[cell_id] = await row.get_attribute("data-execution-id")
        await row.get_by_test_id("history-select").check()
    await history.get_by_test_id("history-rebuild").click()
    await history.get_by_test_id("history-rebuild-path").fill("alice/rain-rebuilt.ipynb")
    await history.get_by_test_id("history-rebuild-confirm").click()
    async with context.expect_page() as opened:
        await history.get_by_test_id("history-rebuild-open").click()
    rebuilt = await opened.value
    await expect(rebuilt.get_by_test_id("connection")).to_have_text("connected")

    # The rebuilt cells are named after the runs; they show the outputs, not notes.
    assert runs["plot"] and runs["table"]
    await expect_plot(rebuilt, runs["plot"], 20_000)
    await expect_table(rebuilt, runs["table"], 20_000)
    await expect(rebuilt.get_by_text("not kept by the execution log")).to_have_count(0)
