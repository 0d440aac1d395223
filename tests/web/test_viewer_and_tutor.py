"""Roles as people meet them in the browser: a viewer's keys change nothing; a tutor
watches a student in follow mode, the student sees it, and a raised hand reaches the
tutor."""

from __future__ import annotations

import asyncio
import json

from playwright.async_api import BrowserContext, Page, expect

from tests.conftest import Server, ServerFactory

from .conftest import (
    WEB,
    PersonFactory,
    cell,
    click_into,
    code,
    editor,
    editor_text,
    eventually,
    human_click,
    notebook_of,
    notebook_on_server,
    open_notebook,
    person_in,
    wait_for_source,
)

pytestmark = WEB


async def test_a_viewer_cannot_change_or_run_anything(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    server = await web_server()
    notebook_id = await server.create_notebook(
        "alice/lesson.ipynb", notebook_of(code("c1", "x = 1")), editors=()
    )
    await server.share(notebook_id, "vic", "viewer")
    before = await notebook_on_server(server, notebook_id)
    vic = await open_notebook(await person(server, "vic"), notebook_id)
    alice = await open_notebook(await person(server, "alice"), notebook_id)

    await expect(editor(vic, "c1")).to_have_attribute("contenteditable", "false")
    # Vic types into the cell, then tries the command-mode keys that would delete,
    # insert and retype cells, and Shift+Enter.
    await click_into(vic, "c1")
    await vic.keyboard.press("Control+End")
    await vic.keyboard.type("\nimport os; os.remove('x')")
    await vic.keyboard.press("Escape")
    for key in ("d", "d", "a", "b", "m", "y", "Shift+Enter"):
        await vic.keyboard.press(key)

    # Alice, an editor, types afterwards; once vic reads her line, everything vic sent
    # before it has long reached the server.
    await click_into(alice, "c1")
    await alice.keyboard.press("Control+End")
    await alice.keyboard.type("\ny = 2")
    await expect(editor(vic, "c1")).to_contain_text("y = 2")
    await eventually(lambda: editor_text(vic, "c1"), "x = 1\ny = 2")
    await wait_for_source(server, notebook_id, "c1", "x = 1\ny = 2")

    await expect(vic.get_by_test_id("cell")).to_have_count(1)
    await expect(cell(vic, "c1")).to_have_attribute("data-type", "code")
    after = await notebook_on_server(server, notebook_id)
    assert [c["id"] for c in after["cells"]] == [c["id"] for c in before["cells"]] == ["c1"]
    assert after["cells"][0]["cell_type"] == "code" and after["cells"][0]["outputs"] == []
    assert "os.remove" not in json.dumps(after)
    # Nothing ran: no execution was logged and no kernel was started.
    await server.services.execution_log.barrier()
    response = await server.api("GET", f"/api/notebooks/{notebook_id}/history")
    assert json.loads(response.body)["executions"] == []
    assert server.services.kernels.status(notebook_id) is None


async def tutor_and_student(web_server: ServerFactory) -> Server:
    """A server where tina tutors the class-a group, which sam is in."""
    server = await web_server(tutor_groups={"tutors": ["class-a"]})
    users = server.services.users
    for name in ("tina", "sam"):
        users.get_or_create(name)
    users.create_group("tutors")
    users.create_group("class-a")
    users.add_member("tutors", "tina")
    users.add_member("class-a", "sam")
    return server


async def page_at(context: BrowserContext, path: str, timeout: float = 20) -> Page:
    """The tab of ``context`` showing ``path`` (the same tab or a new one), once it does."""
    async with asyncio.timeout(timeout):
        while True:
            for page in context.pages:
                if page.url.split("?", 1)[0].endswith(path):
                    return page
            await asyncio.sleep(0.05)


async def watch_from_dashboard(
    context: BrowserContext, student: str, notebook_id: str
) -> tuple[Page, Page]:
    """The tutor opens the dashboard and clicks watch on the student's notebook; returns
    the dashboard and the notebook's page (the same tab if watch opened it there)."""
    dashboard = await context.new_page()
    await dashboard.goto("/tutor")
    row = dashboard.locator(f'[data-testid=student][data-student="{student}"]')
    await expect(row).to_be_visible()
    notebook = row.locator(f'[data-testid=student-notebook][data-notebook-id="{notebook_id}"]')
    await expect(notebook).to_be_visible()
    await notebook.get_by_test_id("watch").click()
    watching = await page_at(context, f"/notebooks/{notebook_id}")
    await expect(watching.get_by_test_id("connection")).to_have_text("connected")
    await expect(watching.get_by_test_id("following")).to_be_visible()
    await expect(watching.get_by_test_id("following")).to_contain_text(student)
    return dashboard, watching


async def raise_hand(page: Page, message: str) -> None:
    await page.get_by_test_id("raise-hand").click()
    await page.get_by_test_id("hand-message").fill(message)
    await page.get_by_test_id("hand-send").click()


async def test_a_tutor_watches_a_student_who_raises_a_hand(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    server = await tutor_and_student(web_server)
    questions = [code(f"q{i:02}", f"# question {i}\nanswer_{i} = None\n\n\n") for i in range(1, 25)]
    notebook_id = await server.create_notebook(
        "sam/homework.ipynb", notebook_of(*questions), editors=()
    )
    sam = await open_notebook(await person(server, "sam"), notebook_id)
    await click_into(sam, "q20")
    await sam.keyboard.press("Control+End")
    await sam.keyboard.type("# working on it")

    # Tina lands in sam's notebook, following him, read-only, at the cell he is on.
    tina_context = await person(server, "tina")
    dashboard, tina = await watch_from_dashboard(tina_context, "sam", notebook_id)
    await expect(editor(tina, "q20")).to_have_attribute("contenteditable", "false")
    await expect(cell(tina, "q20")).to_be_in_viewport()
    await expect(cell(tina, "q01")).not_to_be_in_viewport()
    # Sam moves to the first question: tina's view goes with him.
    await click_into(sam, "q01")
    await expect(cell(tina, "q01")).to_be_in_viewport()
    await expect(cell(tina, "q20")).not_to_be_in_viewport()
    await expect(tina.get_by_test_id("following")).to_contain_text("sam")

    # Sam's roster shows the tutor, with the watching badge.
    await expect(person_in(sam, "tina")).to_be_visible()
    await expect(person_in(sam, "tina").get_by_test_id("watching")).to_be_visible()
    await expect(person_in(sam, "sam").get_by_test_id("watching")).to_have_count(0)

    # Sam raises his hand with a message: tina sees it in the roster and on the dashboard.
    message = "stuck on question 20"
    await raise_hand(sam, message)
    await expect(person_in(sam, "sam").get_by_test_id("hand")).to_contain_text(message)
    await expect(person_in(tina, "sam").get_by_test_id("hand")).to_contain_text(message)
    if dashboard == tina:  # watch opened the notebook in the dashboard's tab
        dashboard = await tina_context.new_page()
        await dashboard.goto("/tutor")
    await expect(
        dashboard.locator('[data-testid=student][data-student="sam"] [data-testid=hand]')
    ).to_contain_text(message)

    # Watching never edited anything.
    await wait_for_source(
        server,
        notebook_id,
        "q20",
        "# question 20\nanswer_20 = None\n\n\n# working on it",
        user="sam",
    )


async def test_a_following_tutor_lowers_a_hand_with_one_click(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    server = await tutor_and_student(web_server)
    notebook_id = await server.create_notebook(
        "sam/lab.ipynb", notebook_of(code("q1", "import this")), editors=()
    )
    sam = await open_notebook(await person(server, "sam"), notebook_id)
    await click_into(sam, "q1")
    await raise_hand(sam, "help")
    await expect(person_in(sam, "sam").get_by_test_id("hand")).to_contain_text("help")

    _, tina = await watch_from_dashboard(await person(server, "tina"), "sam", notebook_id)
    await expect(person_in(tina, "sam").get_by_test_id("hand")).to_contain_text("help")
    # One click on Lower while following (the press also ends follow mode): the button
    # must still be there when the click is released.
    await human_click(tina, tina.locator('[data-testid=lower-hand][data-username="sam"]'))
    await expect(person_in(tina, "sam").get_by_test_id("hand")).to_have_count(0)
    await expect(person_in(sam, "sam").get_by_test_id("hand")).to_have_count(0)
