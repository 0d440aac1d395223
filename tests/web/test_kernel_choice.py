"""The kernel selector: one choice per notebook, shown to all. Bob switches the kernel
alice's run started; alice's page and a viewer's follow, and the next run uses it."""

from __future__ import annotations

import json

from playwright.async_api import expect

from tests.conftest import ServerFactory
from tests.server.test_kernel_choice import add_kernelspec

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


async def test_switching_the_kernel_asks_first_and_reaches_everyone(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    server = await web_server()
    add_kernelspec(server, "other-python", "Other Python")
    notebook_id = await server.create_notebook(
        "alice/choice.ipynb", notebook_of(code("a", "import sys; sys.executable")), editors=("bob",)
    )
    await server.share(notebook_id, "victor", "viewer")
    alice = await open_notebook(await person(server, "alice"), notebook_id)
    bob = await open_notebook(await person(server, "bob"), notebook_id)
    victor = await open_notebook(await person(server, "victor"), notebook_id)
    await expect(alice.get_by_test_id("kernel-choice")).to_have_value("python3")
    await expect(victor.get_by_test_id("kernel-choice")).to_be_hidden()
    await expect(victor.get_by_test_id("kernel-name")).to_have_text("Python 3 (ipykernel)")

    await click_into(alice, "a")
    await alice.keyboard.press("Shift+Enter")
    await expect(alice.get_by_test_id("kernel-status")).to_have_text("idle", timeout=KERNEL_TIMEOUT)

    # Bob picks another kernel: a kernel is running, so he is asked first; Cancel keeps it.
    await bob.get_by_test_id("kernel-choice").select_option("other-python")
    dialog = bob.get_by_test_id("confirm-dialog")
    await expect(dialog).to_contain_text("Switch to Other Python?")
    await expect(dialog).to_contain_text("its variables are lost")
    await bob.get_by_test_id("confirm-cancel").click()
    await expect(bob.get_by_test_id("kernel-choice")).to_have_value("python3")
    await expect(alice.get_by_test_id("kernel-status")).to_have_text("idle")

    await bob.get_by_test_id("kernel-choice").select_option("other-python")
    await bob.get_by_test_id("confirm-ok").click()
    for page in (alice, bob):
        await expect(page.get_by_test_id("kernel-choice")).to_have_value("other-python")
        await expect(page.get_by_test_id("kernel-status")).to_have_text("no kernel")
    await expect(victor.get_by_test_id("kernel-name")).to_have_text("Other Python")

    await click_into(alice, "a")
    await alice.keyboard.press("Control+Enter")
    for page in (alice, bob):  # the chosen kernel started, for both
        await expect(page.get_by_test_id("kernel-status")).to_have_text("idle", timeout=KERNEL_TIMEOUT)
    await expect(cell(alice, "a").get_by_test_id("execution-count")).to_have_text("In [1]:")
    status = json.loads((await server.api("GET", f"/api/notebooks/{notebook_id}/kernel")).body)
    assert status["kernel"]["name"] == "other-python"
