"""Two people in one notebook, in two real browsers: typing, cursors, the roster, running
a cell and the history of that run."""

from __future__ import annotations

import tempfile
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
    editor,
    editor_text,
    eventually,
    expect_cursor_of,
    notebook_of,
    open_notebook,
    person_in,
    wait_for_source,
)

pytestmark = WEB


async def test_two_people_type_in_one_cell_and_see_each_other(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    server = await web_server()
    notebook_id = await server.create_notebook(
        "alice/pair.ipynb",
        notebook_of(code("c1", ""), code("c2", "total = 0")),
        editors=("bob",),
    )
    alice = await open_notebook(await person(server, "alice"), notebook_id)
    bob = await open_notebook(await person(server, "bob"), notebook_id)

    await click_into(alice, "c1")
    await alice.keyboard.type("a = 1")
    await expect(editor(bob, "c1")).to_contain_text("a = 1")

    await click_into(bob, "c1")
    await bob.keyboard.press("Control+End")
    await bob.keyboard.press("Enter")
    await bob.keyboard.type("b = 2")
    await expect(editor(alice, "c1")).to_contain_text("b = 2")

    # Both read the same text, and it is what the server holds.
    await eventually(lambda: editor_text(alice, "c1"), "a = 1\nb = 2")
    await eventually(lambda: editor_text(bob, "c1"), "a = 1\nb = 2")
    await wait_for_source(server, notebook_id, "c1", "a = 1\nb = 2")

    # Each sees the other's cursor, labelled with their name, in that cell only.
    await expect_cursor_of(alice, "c1", "bob")
    await expect_cursor_of(bob, "c1", "alice")
    await expect(cell(alice, "c2").locator(".cm-ySelectionCaret")).to_have_count(0)

    # The roster: both people on both pages, each on the cell they are in.
    for page in (alice, bob):
        for name in ("alice", "bob"):
            where = person_in(page, name).get_by_test_id("person-cell")
            await expect(where).to_have_attribute("data-cell-id", "c1")
            await expect(where).to_have_text("cell 1")

    # Bob moves to the second cell: both rosters show him there, and alice still on c1.
    await click_into(bob, "c2")
    for page in (alice, bob):
        bob_is_on = person_in(page, "bob").get_by_test_id("person-cell")
        await expect(bob_is_on).to_have_attribute("data-cell-id", "c2")
        await expect(bob_is_on).to_have_text("cell 2")
        alice_is_on = person_in(page, "alice").get_by_test_id("person-cell")
        await expect(alice_is_on).to_have_attribute("data-cell-id", "c1")
    await expect_cursor_of(alice, "c2", "bob")
    await expect(cell(alice, "c1").locator(".cm-ySelectionCaret")).to_have_count(0)


async def test_a_run_is_seen_by_both_and_listed_in_history(
    web_server: ServerFactory, person: PersonFactory, tmp_path: Path
) -> None:
    # The first cell runs until the test opens its gate, so "running" and "queued"
    # are states to wait for, not moments to catch.
    # In a folder the kernel's account can reach (pytest's own temp root is 0700).
    gate_folder = Path(tempfile.mkdtemp(prefix="gate-", dir="/var/tmp"))
    gate_folder.chmod(0o711)
    gate = gate_folder / "gate"
    slow = (
        "import os, time\n"
        f"while not os.path.exists({str(gate)!r}):\n"
        "    time.sleep(0.05)\n"
        "print('gate opened')"
    )
    server = await web_server()
    notebook_id = await server.create_notebook(
        "alice/run.ipynb",
        notebook_of(code("slow", slow), code("answer", "6 * 7")),
        editors=("bob",),
    )
    alice = await open_notebook(await person(server, "alice"), notebook_id)
    bob = await open_notebook(await person(server, "bob"), notebook_id)

    # Bob runs the first cell from the keyboard and the second with the run button.
    await click_into(bob, "slow")
    await bob.keyboard.press("Shift+Enter")
    await click_into(bob, "answer")
    await bob.get_by_test_id("run").click()

    for page in (alice, bob):
        slow_cell, answer_cell = cell(page, "slow"), cell(page, "answer")
        await expect(slow_cell.get_by_test_id("cell-state")).to_have_text(
            "running by bob", timeout=KERNEL_TIMEOUT
        )
        await expect(slow_cell.get_by_test_id("execution-count")).to_have_text("In [*]:")
        await expect(answer_cell.get_by_test_id("cell-state")).to_have_text("queued by bob")
        await expect(person_in(page, "bob").get_by_test_id("person-activity")).to_have_text(
            "running"
        )

    gate.touch()
    for page in (alice, bob):
        slow_cell, answer_cell = cell(page, "slow"), cell(page, "answer")
        await expect(slow_cell.get_by_test_id("outputs")).to_contain_text(
            "gate opened", timeout=KERNEL_TIMEOUT
        )
        await expect(answer_cell.get_by_test_id("outputs")).to_contain_text(
            "42", timeout=KERNEL_TIMEOUT
        )
        await expect(slow_cell.get_by_test_id("cell-state")).to_have_text("")
        await expect(answer_cell.get_by_test_id("cell-state")).to_have_text("")
        await expect(slow_cell.get_by_test_id("execution-count")).to_have_text("In [1]:")
        await expect(answer_cell.get_by_test_id("execution-count")).to_have_text("In [2]:")
        # The result is labelled with its count, as Jupyter does; printed text is not.
        await expect(answer_cell.get_by_test_id("output-prompt")).to_have_text("Out[2]:")
        await expect(slow_cell.get_by_test_id("output-prompt")).to_have_text("")
        await expect(slow_cell.get_by_test_id("stale")).to_have_count(0)

    # Alice opens the history: both runs, by bob, finished ok.
    await alice.get_by_test_id("history-toggle").click()
    history = alice.get_by_test_id("history")
    await expect(history).to_be_visible()
    rows = history.get_by_test_id("history-row")
    await expect(rows).to_have_count(2)
    for cell_id in ("slow", "answer"):
        row = history.locator(f'[data-testid=history-row][data-cell-id="{cell_id}"]')
        await expect(row).to_have_attribute("data-user", "bob")
        await expect(row).to_have_attribute("data-status", "ok")
        await expect(row).to_contain_text("bob")
    await expect(
        history.locator('[data-testid=history-row][data-cell-id="answer"]')
    ).to_contain_text("6 * 7")

    # Editing the source after the run marks the output stale, for both.
    await click_into(alice, "answer")
    await alice.keyboard.press("Control+End")
    await alice.keyboard.type(" + 0")
    for page in (alice, bob):
        await expect(cell(page, "answer").get_by_test_id("stale")).to_have_count(1)
