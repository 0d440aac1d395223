"""Uploading any file from the list page and previewing it: text as text, images as
images, other files say there is no preview; an SVG's script never runs."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect

from tests.conftest import ServerFactory
from tests.server.test_uploads import PNG

from .conftest import WEB, PersonFactory

pytestmark = WEB

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10"><script>parent.stolen=1;document.title="owned"</script><rect width="20" height="10" fill="teal"/></svg>'


async def test_upload_any_file_and_preview_it(
    web_server: ServerFactory, person: PersonFactory, tmp_path: Path
) -> None:
    server = await web_server()
    files = {
        "visits.csv": b"city,visits\nLisbon,1204\nNairobi,873\n",
        "dot.png": PNG,
        "shape.svg": SVG,
        "blob.bin": bytes(range(256)),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    page = await (await person(server, "alice")).new_page()
    await page.goto("/")
    await page.get_by_test_id("upload").locator("input[type=file]").set_input_files(
        [str(tmp_path / name) for name in files]
    )
    await expect(page.get_by_test_id("flash")).to_contain_text("Uploaded visits.csv, dot.png, shape.svg, blob.bin.")
    root = server.services.settings.root_dir / "alice"
    for name, data in files.items():
        assert (root / name).read_bytes() == data
    row = lambda name: page.locator(f'[data-testid=file-row][data-path="alice/{name}"]')  # noqa: E731

    await row("visits.csv").get_by_test_id("preview").click()
    dialog = page.get_by_test_id("preview-dialog")
    await expect(dialog.get_by_test_id("preview-text")).to_have_text("city,visits\nLisbon,1204\nNairobi,873\n")
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)

    await row("dot.png").get_by_test_id("preview").click()
    image = dialog.get_by_test_id("preview-image")
    await expect(image).to_be_visible()
    assert await image.evaluate("img => img.decode().then(() => img.naturalWidth)") == 1
    await dialog.get_by_test_id("preview-close").click()

    await row("shape.svg").get_by_test_id("preview").click()
    await expect(image).to_be_visible()
    assert await image.evaluate("img => img.decode().then(() => img.naturalWidth)") == 20
    assert await page.evaluate("() => [window.stolen, document.title]") == [None, "Notebooks · collab-server"]
    await page.keyboard.press("Escape")

    await row("blob.bin").get_by_test_id("preview").click()
    await expect(dialog.get_by_test_id("preview-none")).to_have_text(
        "There is no preview for this kind of file: download it."
    )
    await page.keyboard.press("Escape")

    # The same name again: asked first, and Cancel keeps the old file.
    (tmp_path / "visits.csv").write_bytes(b"other\n")
    await page.get_by_test_id("upload").locator("input[type=file]").set_input_files(str(tmp_path / "visits.csv"))
    await expect(page.get_by_test_id("confirm-dialog")).to_contain_text("There is already a file named visits.csv")
    await page.get_by_test_id("confirm-cancel").click()
    assert (root / "visits.csv").read_bytes() == files["visits.csv"]
