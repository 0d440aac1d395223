// @ts-check
// The tutor dashboard (`/tutor`): every student of the groups you tutor,
// refreshed every few seconds from GET /api/tutor/students.
import { h, fill, errorText } from "../list/dom.js";
import { api } from "../lib/api.js";
import { readBoot, topBar, poll } from "../list/page.js";
import { icon } from "../list/icons.js";
import { timeElement } from "../list/time.js";
import { studentCard, watchUrl } from "./student.js";

/** @typedef {import("./student.js").Student} Student */

const REFRESH_EVERY_MS = 3000;

/** @param {HTMLElement} root */
export function mountTutor(root) {
  const boot = readBoot();

  /** @type {{students: Student[] | null, error: string, filter: string, activeOnly: boolean}} */
  const state = { students: null, error: "", filter: "", activeOnly: false };
  /** @type {Map<string, {signature: string, card: HTMLElement}>} */
  const cards = new Map();

  const summary = h("p", { class: "summary muted", testid: "summary", "aria-live": "polite" });
  const problem = h("p", { class: "alert", role: "alert", testid: "tutor-error", hidden: true });
  const search = h("input", {
    type: "search",
    placeholder: "Find a student",
    "aria-label": "Find a student",
    testid: "student-filter",
    oninput: () => {
      state.filter = search.value.trim().toLowerCase();
      render();
    },
  });
  const activeOnly = h("input", {
    type: "checkbox",
    testid: "active-only",
    onchange: () => {
      state.activeOnly = activeOnly.checked;
      render();
    },
  });
  const queue = h("section", { class: "queue", testid: "hand-queue", "aria-label": "Raised hands", hidden: true });
  const grid = h("div", { class: "students", testid: "students", "aria-busy": "true" });

  fill(
    root,
    topBar(boot, "tutor"),
    h(
      "main",
      { class: "page" },
      h(
        "div",
        { class: "dash-head" },
        h("div", null, h("h1", null, "Your students"), summary),
        h("div", { class: "dash-tools", testid: "dash-tools" }, search, h("label", { class: "check" }, activeOnly, "Active only")),
      ),
      problem,
      queue,
      grid,
    ),
  );

  const actions = {
    /**
     * @param {string} notebookId
     * @param {string} username
     */
    async lowerHand(notebookId, username) {
      try {
        await api.del(`/api/notebooks/${notebookId}/hand/${encodeURIComponent(username)}`);
        showProblem("");
      } catch (e) {
        showProblem(`${username}'s hand could not be lowered: ${errorText(e)}`);
      }
      await refresher.now();
    },
  };

  /** @param {string} text */
  function showProblem(text) {
    problem.hidden = !text;
    problem.textContent = text;
  }

  async function load() {
    try {
      const data = /** @type {{students: Student[]}} */ (await api.get("/api/tutor/students"));
      state.students = data.students;
      state.error = "";
    } catch (e) {
      state.error = errorText(e);
    }
    render();
  }

  /** Hands across all students, oldest first: who to help next. */
  function renderQueue(/** @type {Student[]} */ students, /** @type {number} */ now) {
    const hands = students.flatMap((s) =>
      s.notebooks.flatMap((nb) =>
        Object.entries(nb.hands || {}).map(([username, hand]) => ({ student: s.name, nb, username, hand })),
      ),
    );
    hands.sort((a, b) => a.hand.raised_at - b.hand.raised_at);
    queue.hidden = hands.length === 0;
    if (!hands.length) return;
    fill(
      queue,
      h("h2", null, icon("hand"), `Raised hands (${hands.length})`),
      h(
        "ol",
        null,
        hands.map(({ nb, username, hand }) =>
          h(
            "li",
            { testid: "hand-queue-item", dataset: { username, notebookId: nb.id } },
            h("strong", null, username),
            hand.message ? h("span", { class: "hand-message" }, `“${hand.message}”`) : h("span", { class: "muted" }, "no message"),
            h("span", { class: "muted small" }, nb.path, " · ", timeElement(hand.raised_at, now)),
            h("a", { class: "btn btn-primary", href: watchUrl(nb.id, username) }, icon("eye"), "Watch"),
          ),
        ),
      ),
    );
  }

  function render() {
    const now = Date.now() / 1000;
    grid.setAttribute("aria-busy", state.students === null ? "true" : "false");
    showProblem(state.error ? `The dashboard could not be refreshed: ${state.error}. Retrying…` : "");
    if (state.students === null) {
      if (!state.error) fill(grid, h("p", { class: "empty" }, "Loading…"));
      return;
    }
    const students = state.students;
    const active = students.filter((s) => s.active).length;
    const handCount = students.reduce((n, s) => n + s.notebooks.reduce((m, nb) => m + Object.keys(nb.hands || {}).length, 0), 0);
    summary.textContent = students.length
      ? `${active} of ${students.length} student${students.length > 1 ? "s" : ""} active now` +
        (handCount ? ` · ${handCount} raised hand${handCount > 1 ? "s" : ""}` : "") +
        " · updates every few seconds"
      : "";
    renderQueue(students, now);
    const tools = /** @type {HTMLElement | null} */ (root.querySelector(".dash-tools"));
    if (tools) tools.hidden = students.length === 0;

    if (!students.length) {
      cards.clear();
      fill(
        grid,
        h(
          "div",
          { class: "empty panel", testid: "no-students" },
          h("p", { class: "empty-title" }, "No students to show"),
          h(
            "p",
            null,
            "You see the members of the student groups your tutor groups watch (the server's tutor_groups setting). Ask an administrator to add you to a tutor group.",
          ),
        ),
      );
      return;
    }
    const shown = students.filter(
      (s) => (!state.filter || s.name.toLowerCase().includes(state.filter)) && (!state.activeOnly || s.active),
    );
    if (!shown.length) {
      fill(grid, h("p", { class: "empty panel" }, state.activeOnly && !state.filter ? "No student is active right now." : "No student matches."));
      return;
    }
    // Rebuild only the cards whose data changed, keeping focus and open
    // "more" sections; refresh the relative times of the others.
    const focused = /** @type {HTMLElement | null} */ (document.activeElement);
    const focusKey = focused && grid.contains(focused) ? focused.dataset.focusKey : undefined;
    const focusStudent = focused && grid.contains(focused) ? focused.closest("[data-student]")?.getAttribute("data-student") : undefined;
    /** @type {HTMLElement[]} */
    const next = [];
    for (const student of shown) {
      const signature = JSON.stringify(student);
      let entry = cards.get(student.name);
      if (!entry || entry.signature !== signature) {
        const card = studentCard(student, actions, now);
        const wasOpen = entry?.card.querySelector("details.more")?.hasAttribute("open");
        if (wasOpen) card.querySelector("details.more")?.setAttribute("open", "");
        entry = { signature, card };
        cards.set(student.name, entry);
      } else {
        for (const el of entry.card.querySelectorAll("time")) refreshTime(/** @type {HTMLTimeElement} */ (el), now);
      }
      next.push(entry.card);
    }
    for (const name of [...cards.keys()]) if (!students.some((s) => s.name === name)) cards.delete(name);
    const same = next.length === grid.children.length && next.every((card, i) => grid.children[i] === card);
    if (!same) grid.replaceChildren(...next);
    if (focusKey && focusStudent && document.activeElement !== focused) {
      const card = cards.get(focusStudent)?.card;
      const target = /** @type {HTMLElement | null} */ (card?.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`));
      target?.focus();
    }
  }

  /**
   * @param {HTMLTimeElement} el
   * @param {number} now
   */
  function refreshTime(el, now) {
    const fresh = timeElement(Date.parse(el.dateTime) / 1000, now);
    if (fresh.textContent !== el.textContent) el.textContent = fresh.textContent;
  }

  render();
  const refresher = poll(load, REFRESH_EVERY_MS);
}
