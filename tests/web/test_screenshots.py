"""Pictures of the app for people to look at (the README shows them): the notebook view
with two people in it (in the light and the dark theme), the tutor dashboard with a
raised hand, and the notebook and the list on a phone (390 px wide).

Each picture is taken once the page shows what it is meant to show (both people in the
roster, the other's cursor, the outputs; the student active with a hand up), and is
written to ``$SCREENSHOTS_DIR/collab-screenshots/`` (default: the temp folder);
README shows copies kept in ``docs/screenshots/``.
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from tests.conftest import ServerFactory

from .conftest import (
    PHONE,
    SCREENSHOTS,
    WEB,
    PersonFactory,
    cell,
    click_into,
    code,
    editor,
    expect_cursor_of,
    markdown,
    notebook_of,
    open_notebook,
    person_in,
)

pytestmark = WEB

TABLE = (
    "<table><thead><tr><th>city</th><th>visits</th></tr></thead><tbody>"
    "<tr><td>Lisbon</td><td>1204</td></tr><tr><td>Nairobi</td><td>873</td></tr>"
    "<tr><td>Osaka</td><td>652</td></tr></tbody></table>"
)


def analysis() -> dict[str, Any]:
    return notebook_of(
        markdown("intro", "# Visits by city\nLoad the counts, then look at the top cities."),
        code(
            "load",
            "counts = {'Lisbon': 1204, 'Nairobi': 873, 'Osaka': 652}\n"
            "print(f'{len(counts)} cities, {sum(counts.values())} visits')",
            [{"output_type": "stream", "name": "stdout", "text": "3 cities, 2729 visits\n"}],
            execution_count=1,
        ),
        code(
            "top",
            "top = max(counts, key=counts.get)\ntop",
            [
                {
                    "output_type": "execute_result",
                    "execution_count": 2,
                    "data": {"text/plain": "'Lisbon'"},
                    "metadata": {},
                }
            ],
            execution_count=2,
        ),
        code(
            "table",
            "from IPython.display import HTML\n"
            "rows = ''.join(f'<tr><td>{c}</td><td>{n}</td></tr>' for c, n in counts.items())\n"
            "HTML(f'<table><tr><th>city</th><th>visits</th></tr>{rows}</table>')",
            [
                {
                    "output_type": "execute_result",
                    "execution_count": 3,
                    "data": {"text/html": TABLE, "text/plain": "<IPython.core.display.HTML>"},
                    "metadata": {},
                }
            ],
            execution_count=3,
        ),
        code("share", "share = {city: n / sum(counts.values()) for city, n in counts.items()}\n"),
    )


async def test_screenshots_of_the_notebook_and_the_tutor_dashboard(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    server = await web_server(tutor_groups={"tutors": ["class-a"]})
    users = server.services.users
    for name in ("tina", "sam"):
        users.get_or_create(name)
    users.create_group("tutors")
    users.create_group("class-a")
    users.add_member("tutors", "tina")
    users.add_member("class-a", "sam")

    # The notebook view: alice and bob pair on one notebook, bob typing in the last cell.
    notebook_id = await server.create_notebook(
        "alice/visits.ipynb", analysis(), editors=("bob", "carol")
    )
    alice = await open_notebook(await person(server, "alice"), notebook_id)
    bob = await open_notebook(await person(server, "bob"), notebook_id)
    await click_into(alice, "top")
    await click_into(bob, "share")
    await bob.keyboard.press("Control+End")
    await bob.keyboard.type("sorted(share.items())")
    await expect(editor(alice, "share")).to_contain_text("sorted(share.items())")
    await expect_cursor_of(alice, "share", "bob")  # leaves the pointer on bob's name
    for name in ("alice", "bob"):
        await expect(person_in(alice, name)).to_be_visible()
    await expect(cell(alice, "load").get_by_test_id("outputs")).to_contain_text("2729 visits")
    await expect(cell(alice, "table").locator("iframe[data-testid=output-frame]")).to_be_visible()
    await expect(
        alice.frame_locator("iframe[data-testid=output-frame]").locator("table")
    ).to_contain_text("Nairobi")
    notebook_png = SCREENSHOTS / "notebook.png"
    await alice.screenshot(path=str(notebook_png))

    # The same, in the dark theme (chosen in the header; the output frame follows).
    await alice.get_by_test_id("theme").select_option("dark")
    await expect(alice.locator("html")).to_have_attribute("data-theme", "dark")
    frame_body = alice.frame_locator("iframe[data-testid=output-frame]").locator("html")
    await expect(frame_body).to_have_attribute("data-theme", "dark")
    dark_png = SCREENSHOTS / "notebook-dark.png"
    await alice.screenshot(path=str(dark_png))

    # On a phone: carol, an editor, follows along; the roster is behind "People".
    carol_phone = await person(server, "carol", viewport=PHONE)
    carol = await open_notebook(carol_phone, notebook_id)
    await expect(cell(carol, "load").get_by_test_id("outputs")).to_contain_text("2729 visits")
    await expect(cell(carol, "load").locator(".cm-content")).to_be_visible()
    phone_png = SCREENSHOTS / "phone-notebook.png"
    await carol.screenshot(path=str(phone_png))
    home = server.services.settings.root_dir / "alice"
    (home / "lessons").mkdir()
    (home / "cities.csv").write_text("city,visits\nLisbon,1204\n")
    listing = await (await person(server, "alice", viewport=PHONE)).new_page()
    await listing.goto("/")
    await expect(listing.get_by_test_id("file-row")).to_have_count(1)
    phone_list_png = SCREENSHOTS / "phone-list.png"
    await listing.screenshot(path=str(phone_list_png))

    # The tutor dashboard: sam is working in his notebook, with a hand up.
    homework_id = await server.create_notebook(
        "sam/homework.ipynb",
        notebook_of(code("q1", "def mean(xs):\n    return sum(xs) / len(xs)")),
        editors=(),
    )
    sam = await open_notebook(await person(server, "sam"), homework_id)
    await click_into(sam, "q1")
    await sam.get_by_test_id("raise-hand").click()
    await sam.get_by_test_id("hand-message").fill("Why does mean([]) fail?")
    await sam.get_by_test_id("hand-send").click()
    tina = await (await person(server, "tina")).new_page()
    await tina.goto("/tutor")
    student = tina.locator('[data-testid=student][data-student="sam"]')
    await expect(student.get_by_test_id("hand")).to_contain_text("Why does mean([]) fail?")
    await expect(
        student.locator(f'[data-testid=student-notebook][data-notebook-id="{homework_id}"]')
    ).to_be_visible()
    tutor_png = SCREENSHOTS / "tutor.png"
    await tina.screenshot(path=str(tutor_png))

    for png in (notebook_png, dark_png, phone_png, phone_list_png, tutor_png):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
