"""Looks and access: the dark theme (the system's preference, a Light / Dark / System
choice that wins over it and survives a reload, set before the first paint), the phone
layout at 390 px, and axe-core's accessibility checks on every page of the app in both
themes.

axe-core is the npm package in web/node_modules (a dev dependency). The app's CSP
forbids inline scripts, so ``page.add_script_tag`` cannot inject it; the tests evaluate
its source through the DevTools protocol instead (``page.evaluate``), which the CSP does
not govern, and the page keeps its real CSP while it is checked.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.async_api import Page, expect

from tests.conftest import Server, ServerFactory

from .conftest import (
    KERNEL_TIMEOUT,
    PHONE,
    WEB,
    PersonFactory,
    cell,
    click_into,
    code,
    eventually,
    markdown,
    notebook_of,
    open_notebook,
)

pytestmark = WEB

AXE = Path(__file__).resolve().parents[2] / "web" / "node_modules" / "axe-core" / "axe.min.js"

TRACEBACK = [
    "\x1b[0;31m---------------------------------------------------------------------------\x1b[0m",
    "\x1b[0;31mZeroDivisionError\x1b[0m                         Traceback (most recent call last)",
    "Cell \x1b[0;32mIn[3], line 1\x1b[0m\n"
    "\x1b[0;32m----> 1\x1b[0m \x1b[38;5;241m1\x1b[39m/\x1b[38;5;241m0\x1b[39m",
    "\x1b[0;31mZeroDivisionError\x1b[0m: division by zero",
]
PNG_DOT = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
    "AAAABJRU5ErkJggg=="
)


def lesson() -> dict[str, Any]:
    """Code, markdown (with maths and a table) and every kind of output the page draws."""
    return notebook_of(
        markdown(
            "intro",
            "# Visits by city\nLoad the counts, then plot them: $\\sum_i n_i$.\n\n"
            "| city | visits |\n|---|---|\n| Lisbon | 1204 |\n\n`inline code` and a "
            "[link](https://example.org).",
        ),
        code(
            "load",
            "# the counts\ncounts = {'Lisbon': 1204, 'Nairobi': 873}\nprint(len(counts), 'cities')",
            [
                {"output_type": "stream", "name": "stdout", "text": "2 cities\n"},
                {"output_type": "stream", "name": "stderr", "text": "a warning\n"},
            ],
            execution_count=1,
        ),
        code(
            "table",
            "from IPython.display import HTML\nHTML('<table><tr><th>city</th></tr></table>')",
            [
                {
                    "output_type": "execute_result",
                    "execution_count": 2,
                    "data": {
                        "text/html": "<table><tr><th>city</th></tr>"
                        "<tr><td>Lisbon</td></tr></table>",
                        "text/plain": "<IPython.core.display.HTML object>",
                    },
                    "metadata": {},
                },
                {
                    "output_type": "display_data",
                    "data": {"image/png": PNG_DOT, "text/plain": "<Figure>"},
                    "metadata": {},
                },
            ],
            execution_count=2,
        ),
        code(
            "fail",
            "1/0",
            [
                {
                    "output_type": "error",
                    "ename": "ZeroDivisionError",
                    "evalue": "division by zero",
                    "traceback": TRACEBACK,
                }
            ],
            execution_count=3,
        ),
        code("next", "total = 1204 + 873\ntotal"),
    )


# ---- what the person sees ------------------------------------------------------------


def rgb(css: str) -> tuple[int, int, int]:
    """``rgb(13, 17, 23)`` (or ``rgba(...)``) as numbers."""
    match = re.match(r"rgba?\((\d+), (\d+), (\d+)", css)
    assert match, css
    r, g, b = (int(x) for x in match.groups())
    return r, g, b


def luminance(css: str) -> float:
    """Relative luminance (WCAG): 0 is black, 1 is white."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb(css))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


async def style_of(page: Page, selector: str, prop: str) -> str:
    value: str = await page.locator(selector).first.evaluate(
        f"e => getComputedStyle(e).{prop}"
    )
    return value


async def expect_theme(page: Page, theme: str) -> None:
    """The page is drawn in ``theme``: its background, text and cell editors."""
    await expect(page.locator("html")).to_have_attribute("data-theme", theme)
    body = await style_of(page, "body", "backgroundColor")
    text = await style_of(page, "body", "color")
    if theme == "dark":
        assert luminance(body) < 0.02, body
        assert luminance(text) > 0.7, text
    else:
        assert luminance(body) > 0.9, body
        assert luminance(text) < 0.05, text
    if await page.locator(".cm-editor").count():
        editor = await style_of(page, ".cm-editor", "backgroundColor")
        assert (luminance(editor) < 0.02) if theme == "dark" else (luminance(editor) > 0.85), editor


async def choose_theme(page: Page, choice: str) -> None:
    await page.get_by_test_id("theme").select_option(choice)


async def axe_problems(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is, one line each."""
    assert AXE.is_file(), f"{AXE} is missing: npm ci --prefix web installs axe-core"
    await page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    found: list[dict[str, Any]] = await page.evaluate(
        """async () => {
            const result = await axe.run(document, {iframes: false, resultTypes: ["violations"]});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(" ") + ": " + n.failureSummary),
            }));
        }"""
    )
    return [
        f"{v['impact']} {v['id']} ({v['help']}): " + " | ".join(v["nodes"][:4])
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


async def expect_no_axe_problems(page: Page, where: str) -> None:
    problems = await axe_problems(page)
    assert not problems, f"axe on {where}:\n" + "\n".join(problems)


async def shows_everything(page: Page) -> None:
    """The lesson is drawn: editors, rendered markdown and maths, the outputs and the frame."""
    for cell_id in ("load", "table", "fail", "next"):
        await cell(page, cell_id).scroll_into_view_if_needed()
        await expect(cell(page, cell_id).locator(".cm-content")).to_have_count(1)
    await cell(page, "intro").scroll_into_view_if_needed()
    await expect(cell(page, "intro").locator(".katex")).to_have_count(1)
    await expect(cell(page, "load").get_by_test_id("outputs")).to_contain_text("a warning")
    await expect(cell(page, "fail").get_by_test_id("outputs")).to_contain_text("division by zero")
    await expect(
        page.frame_locator("iframe[data-testid=output-frame]").locator("td")
    ).to_have_text("Lisbon")


async def frame_text_colour(page: Page) -> str:
    colour: str = await page.frame_locator("iframe[data-testid=output-frame]").locator(
        "body"
    ).evaluate("b => getComputedStyle(b).color")
    return colour


async def frame_is_dark(page: Page) -> bool:
    """The output frame draws light text (for a dark page) rather than dark text."""
    return luminance(await frame_text_colour(page)) > 0.5


async def a_class(server: Server) -> tuple[str, str]:
    """Alice's lesson (bob edits it) and tina, tutor of sam, who has a notebook and a hand up."""
    users = server.services.users
    for name in ("tina", "sam"):
        users.get_or_create(name)
    users.create_group("tutors")
    users.create_group("class-a")
    users.add_member("tutors", "tina")
    users.add_member("class-a", "sam")
    lesson_id = await server.create_notebook("alice/visits.ipynb", lesson(), editors=("bob",))
    homework_id = await server.create_notebook(
        "sam/homework.ipynb", notebook_of(code("q1", "def mean(xs):\n    return 0")), editors=()
    )
    return lesson_id, homework_id


# ---- dark mode ---------------------------------------------------------------------------


async def test_dark_follows_the_system_and_the_choice_wins_and_is_kept(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    server = await web_server()
    notebook_id = await server.create_notebook("alice/visits.ipynb", lesson(), editors=())
    context = await person(server, "alice", color_scheme="dark")
    # What <html> says when <body> first appears: only the blocking theme script in
    # <head> can have run by then (the page's own bundle is a module, run after parsing).
    await context.add_init_script(
        """new MutationObserver((_, observer) => {
            if (!document.body) return;
            window.themeAtFirstBody = document.documentElement.dataset.theme || "unset";
            observer.disconnect();
        }).observe(document, {childList: true, subtree: true});"""
    )
    page = await open_notebook(context, notebook_id)
    await shows_everything(page)
    assert await page.evaluate("window.themeAtFirstBody") == "dark"
    await expect(page.get_by_test_id("theme")).to_have_value("system")
    await expect_theme(page, "dark")
    assert await frame_is_dark(page)  # the output frame is dark too

    # Light, chosen on a dark system: applied at once, the output frame follows.
    await choose_theme(page, "light")
    await expect_theme(page, "light")
    await eventually(lambda: frame_is_dark(page), False)

    # Kept across a reload (light before the first paint), and on the other pages.
    await page.reload()
    await expect(page.get_by_test_id("connection")).to_have_text("connected")
    assert await page.evaluate("window.themeAtFirstBody") == "light"
    await expect(page.get_by_test_id("theme")).to_have_value("light")
    await expect_theme(page, "light")
    listing = await context.new_page()
    await listing.goto("/")
    await expect(listing.get_by_test_id("notebook-row")).to_have_count(1)
    await expect_theme(listing, "light")

    # Dark, chosen on the list page, reaches the open notebook tab without a reload.
    await choose_theme(listing, "dark")
    await expect_theme(listing, "dark")
    await expect_theme(page, "dark")
    await expect(page.get_by_test_id("theme")).to_have_value("dark")

    # System again: the system's dark, and a change of the system's preference follows.
    await choose_theme(page, "system")
    await expect_theme(page, "dark")
    await page.emulate_media(color_scheme="light")
    await expect_theme(page, "light")

    # The login page (no app bundle) follows the choice too.
    await choose_theme(listing, "dark")
    login = await context.new_page()
    await login.goto("/logout")
    await expect(login.locator("html")).to_have_attribute("data-theme", "dark")
    assert luminance(await style_of(login, "body", "backgroundColor")) < 0.02


# ---- the phone layout -------------------------------------------------------------------


async def page_width(page: Page) -> int:
    width: int = await page.evaluate("document.documentElement.scrollWidth")
    return width


async def expect_within_screen(page: Page, selector: str) -> int:
    """Every element matching ``selector`` that is shown lies inside the 390 px screen."""
    boxes: list[dict[str, float]] = await page.locator(selector).evaluate_all(
        """els => els.filter(e => e.getClientRects().length).map(e => {
            const r = e.getBoundingClientRect();
            return {left: r.left, right: r.right, text: e.textContent};
        })"""
    )
    outside = [b for b in boxes if b["left"] < 0 or b["right"] > PHONE["width"]]
    assert not outside, outside
    return len(boxes)


async def test_at_390_px_nothing_runs_off_the_screen(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    server = await web_server(tutor_groups={"tutors": ["class-a"]})
    lesson_id, _ = await a_class(server)
    home = server.services.settings.root_dir / "alice"
    (home / "lessons").mkdir()
    (home / "cities.csv").write_text("city,visits\nLisbon,1204\n")
    await server.create_notebook("bob/shared-with-alice.ipynb", notebook_of(), editors=("alice",))
    context = await person(server, "alice", viewport=PHONE)

    # The notebook: cells the full width, the roster a drawer over them.
    page = await open_notebook(context, lesson_id)
    await shows_everything(page)
    assert await page_width(page) <= PHONE["width"]
    roster = page.get_by_test_id("roster")
    await expect(roster).to_be_hidden()
    editor_box = await cell(page, "load").locator(".cm-editor").bounding_box()
    assert editor_box is not None and editor_box["width"] >= PHONE["width"] - 40, editor_box
    assert await expect_within_screen(page, ".nb-toolbar button, .nb-toolbar select") == 12
    assert await expect_within_screen(page, ".nb-header > *") >= 8
    toggle = page.get_by_test_id("people-toggle")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await expect(roster).to_be_visible()
    await expect(roster.get_by_test_id("person")).to_have_count(1)
    roster_box = await roster.bounding_box()
    assert roster_box is not None and roster_box["x"] < editor_box["x"] + editor_box["width"]
    assert roster_box["x"] + roster_box["width"] <= PHONE["width"]
    assert await page_width(page) <= PHONE["width"]
    await page.keyboard.press("Escape")
    await expect(roster).to_be_hidden()
    await expect(toggle).to_be_focused()
    # Typing still works at this size.
    await click_into(page, "next")
    await page.keyboard.press("Control+End")
    await page.keyboard.type("  # from a phone")
    await expect(cell(page, "next").locator(".cm-content")).to_contain_text("from a phone")
    # The history panel takes the screen instead of squeezing the cells.
    await page.get_by_test_id("history-toggle").click()
    history = page.get_by_test_id("history")
    await expect(history).to_be_visible()
    history_box = await history.bounding_box()
    assert history_box is not None and history_box["width"] >= PHONE["width"] - 2
    assert await page_width(page) <= PHONE["width"]

    # The list: a folder, a notebook, a file and a shared notebook, every button on screen.
    listing = await context.new_page()
    await listing.goto("/")
    for testid in ("folder-row", "notebook-row", "file-row"):
        await expect(listing.get_by_test_id("listing").get_by_test_id(testid)).to_have_count(1)
    await expect(listing.get_by_test_id("shared").get_by_test_id("notebook-row")).to_have_count(1)
    assert await page_width(listing) <= PHONE["width"]
    buttons = "[data-testid$=-row] .row-actions > *, [data-testid=folder-actions] > *"
    assert await expect_within_screen(listing, buttons) >= 10
    await expect_within_screen(listing, ".topbar a, .topbar select")
    # The download menu opens on screen.
    row = listing.get_by_test_id("listing").get_by_test_id("notebook-row")
    await row.get_by_test_id("download").click()
    await expect(row.get_by_test_id("download-ipynb")).to_be_visible()
    await expect_within_screen(listing, ".menu[open] .menu-item")

    # The tutor dashboard.
    tina = await (await person(server, "tina", viewport=PHONE)).new_page()
    await tina.goto("/tutor")
    await expect(tina.get_by_test_id("student")).to_have_count(1)
    assert await page_width(tina) <= PHONE["width"]
    await expect_within_screen(tina, "[data-testid=student]")


# ---- axe-core ---------------------------------------------------------------------------


async def test_axe_finds_nothing_serious_on_any_page_in_either_theme(
    web_server: ServerFactory, person: PersonFactory
) -> None:
    server = await web_server(tutor_groups={"tutors": ["class-a"]})
    lesson_id, homework_id = await a_class(server)
    await server.create_notebook("bob/shared-with-alice.ipynb", notebook_of(), editors=("alice",))
    (server.services.settings.root_dir / "alice" / "lessons").mkdir()

    # Sam works in his notebook with a hand up, for the tutor's dashboard.
    sam = await open_notebook(await person(server, "sam"), homework_id)
    await click_into(sam, "q1")
    await sam.get_by_test_id("raise-hand").click()
    await sam.get_by_test_id("hand-message").fill("Why is the mean 0?")
    await sam.get_by_test_id("hand-send").click()

    alice = await person(server, "alice")
    page = await open_notebook(alice, lesson_id)
    await shows_everything(page)
    # One real run, so the history panel has a row.
    await click_into(page, "next")
    await page.keyboard.press("Shift+Enter")
    await expect(cell(page, "next").get_by_test_id("execution-count")).to_have_text(
        "In [1]:", timeout=KERNEL_TIMEOUT
    )
    await expect(cell(page, "next").get_by_test_id("outputs")).to_contain_text("2077")
    # The cells are labelled regions, their editors named.
    await expect(page.get_by_role("region", name="Code cell 2")).to_have_attribute(
        "data-cell-id", "load"
    )
    await expect(page.get_by_role("region", name="Markdown cell 1")).to_have_attribute(
        "data-cell-id", "intro"
    )
    await expect(cell(page, "load").get_by_role("textbox", name="Code")).to_be_visible()

    listing = await alice.new_page()
    await listing.goto("/")
    await expect(listing.get_by_test_id("listing").get_by_test_id("notebook-row")).to_have_count(1)
    await expect(listing.get_by_test_id("shared").get_by_test_id("notebook-row")).to_have_count(1)

    tina = await (await person(server, "tina")).new_page()
    await tina.goto("/tutor")
    await expect(tina.get_by_test_id("hand")).to_contain_text("Why is the mean 0?")

    history = page.get_by_test_id("history")
    for theme in ("light", "dark"):
        await choose_theme(listing, theme)  # alice's notebook tab follows (same browser)
        await choose_theme(tina, theme)
        for where in (page, listing, tina):
            await expect(where.locator("html")).to_have_attribute("data-theme", theme)
        await expect_no_axe_problems(listing, f"the list ({theme})")
        await expect_no_axe_problems(tina, f"the tutor dashboard ({theme})")
        await page.bring_to_front()
        await expect_no_axe_problems(page, f"the notebook ({theme})")
        await page.get_by_test_id("history-toggle").click()
        await expect(history.get_by_test_id("history-row")).to_have_count(1)
        await expect_no_axe_problems(page, f"the notebook with its history ({theme})")
        await page.get_by_test_id("history-toggle").click()
        await expect(history).to_be_hidden()

    # And a phone, in the dark.
    phone = await open_notebook(
        await person(server, "alice", viewport=PHONE, color_scheme="dark"), lesson_id
    )
    await shows_everything(phone)
    await phone.get_by_test_id("people-toggle").click()
    await expect(phone.get_by_test_id("roster")).to_be_visible()
    await expect_no_axe_problems(phone, "the notebook on a phone (dark)")
    phone_list = await phone.context.new_page()
    await phone_list.goto("/")
    shared = phone_list.get_by_test_id("shared")
    await expect(shared.get_by_test_id("notebook-row")).to_have_count(1)
    await expect_no_axe_problems(phone_list, "the list on a phone (dark)")
