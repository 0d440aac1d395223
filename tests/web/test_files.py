"""Files that are not notebooks in the list page: a ``.csv`` a kernel wrote is listed as a
file (its own icon, size and time; no opening as a notebook) and downloads by its path."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect

from tests.conftest import ServerFactory

from .conftest import (
    KERNEL_TIMEOUT,
    WEB,
    PersonFactory,
    cell,
    click_into,
    code,
    notebook_of,
    open_notebook,
)

pytestmark = WEB

CSV = "city,visits\nLisbon,1204\nNairobi,873\n"


async def test_a_csv_the_kernel_wrote_is_a_file_that_downloads(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    server = await web_server()
    notebook_id = await server.create_notebook(
        "alice/analysis.ipynb",
        notebook_of(code("write", f"with open('data.csv', 'w') as f:\n    f.write({CSV!r})")),
        editors=(),
    )
    context = await person(server, "alice")
    page = await open_notebook(context, notebook_id)
    await click_into(page, "write")
    await page.keyboard.press("Shift+Enter")
    await expect(cell(page, "write").get_by_test_id("execution-count")).to_have_text(
        "In [1]:", timeout=KERNEL_TIMEOUT
    )
    written = server.services.settings.root_dir / "alice" / "data.csv"
    assert written.read_text() == CSV

    await page.goto("/")
    row = page.locator('[data-testid=file-row][data-path="alice/data.csv"]')
    await expect(row).to_be_visible()
    await expect(row.get_by_test_id("file-name")).to_have_text("data.csv")
    await expect(row.locator("svg.icon-file")).to_have_count(1)
    await expect(row.get_by_test_id("size")).to_have_text(f"{len(CSV)} B")
    await expect(row.locator("time")).to_have_count(1)
    # Not a notebook: no link opening it, no sharing, nobody "in" it.
    as_notebook = page.locator('[data-testid=notebook-row][data-path="alice/data.csv"]')
    await expect(as_notebook).to_have_count(0)
    await expect(row.get_by_test_id("open")).to_have_count(0)
    await expect(row.get_by_test_id("share")).to_have_count(0)
    # The notebook next to it is still one.
    notebook_row = page.locator('[data-testid=notebook-row][data-path="alice/analysis.ipynb"]')
    await expect(notebook_row.get_by_test_id("open")).to_have_attribute(
        "href", f"/notebooks/{notebook_id}"
    )

    download_link = row.get_by_test_id("download")
    await expect(download_link).to_have_attribute("href", "/api/files/alice/data.csv?download=1")
    async with page.expect_download() as info:
        await download_link.click()
    download = await info.value
    assert download.suggested_filename == "data.csv"
    assert Path(await download.path()).read_text() == CSV

    # No link anywhere on the page goes to a notebook or a download called "null".
    await expect(page.locator('a[href*="null"]')).to_have_count(0)

    # Renamed like anything else (the stem is selected: typing replaces just it), then deleted.
    await row.get_by_test_id("rename").click()
    await page.keyboard.type("visits")
    await page.keyboard.press("Enter")
    renamed = page.locator('[data-testid=file-row][data-path="alice/visits.csv"]')
    await expect(renamed).to_be_visible()
    assert (written.parent / "visits.csv").read_text() == CSV
    await renamed.get_by_test_id("delete").click()
    await expect(page.get_by_test_id("confirm-dialog")).to_contain_text(
        "The file visits.csv will be deleted."
    )
    await page.get_by_test_id("confirm-ok").click()
    await expect(renamed).to_have_count(0)
    assert not (written.parent / "visits.csv").exists()
    (written.parent / "data.csv").write_text(CSV)

    # A file's path given as a folder says what it is, and links nowhere odd.
    await page.goto("/?path=alice/data.csv")
    await expect(page.get_by_role("alert")).to_contain_text(
        "alice/data.csv is a file, not a folder"
    )
    await expect(page.locator('a[href*="null"]')).to_have_count(0)
    assert page.url.endswith("/?path=alice/data.csv")
