// @ts-check
// One student's card on the tutor dashboard: are they here, their notebooks
// with who is in each, raised hands, recent errors, and a Watch link per
// notebook (it opens the notebook following the student, read-only).
import { h } from "../list/dom.js";
import { avatar } from "../list/people.js";
import { icon } from "../list/icons.js";
import { timeElement } from "../list/time.js";

/**
 * @typedef {{username: string, role: string}} Person
 * @typedef {{message: string, raised_at: number}} Hand
 * @typedef {{id: string, path: string, people: Person[], last_activity: number | null,
 *   hands: {[username: string]: Hand}}} StudentNotebook
 * @typedef {{notebook_id: string, path: string, cell_id: string | null, error: string, at: number | null}} RecentError
 * @typedef {{name: string, active: boolean, notebooks: StudentNotebook[], recent_errors: RecentError[]}} Student
 * @typedef {{lowerHand: (notebookId: string, username: string) => void}} CardActions
 */

/** Notebooks shown before "N more". */
const SHOWN_IDLE = 3;

/**
 * The address that opens a notebook following the student.
 * @param {string} notebookId
 * @param {string} student
 */
export function watchUrl(notebookId, student) {
  return `/notebooks/${notebookId}?follow=${encodeURIComponent(student)}`;
}

/**
 * The path without the student's own folder ("bob/week1/a.ipynb" -> "week1/a.ipynb").
 * @param {string} path
 * @param {string} student
 */
function shortPath(path, student) {
  return path.startsWith(`${student}/`) ? path.slice(student.length + 1) : path;
}

/**
 * @param {StudentNotebook} nb
 * @param {Student} student
 * @param {CardActions} actions
 * @param {number} now
 */
function notebookItem(nb, student, actions, now) {
  const open = nb.people.length > 0;
  const studentIn = nb.people.some((p) => p.username === student.name);
  const hands = Object.entries(nb.hands || {}).sort((a, b) => a[1].raised_at - b[1].raised_at);
  return h(
    "li",
    {
      class: `nb${open ? " nb-open" : ""}${hands.length ? " nb-hand" : ""}`,
      testid: "student-notebook",
      dataset: { notebookId: nb.id, path: nb.path, open: String(open) },
    },
    h(
      "div",
      { class: "nb-main" },
      h(
        "div",
        { class: "nb-info" },
        h(
          "div",
          { class: "nb-title" },
          icon("notebook"),
          h("span", { class: "nb-path", title: nb.path }, shortPath(nb.path, student.name)),
        ),
        h(
          "div",
          { class: "nb-meta" },
          open &&
            h(
              "span",
              { class: "people", testid: "notebook-people", "aria-label": `In it: ${nb.people.map((p) => p.username).join(", ")}` },
              nb.people.map((p) => avatar(p.username, { role: p.role })),
            ),
          nb.last_activity
            ? h("span", { class: "muted small", testid: "last-activity" }, open ? "active " : "last active ", timeElement(nb.last_activity, now))
            : h("span", { class: "muted small" }, "not open"),
        ),
      ),
      h(
        "a",
        {
          class: studentIn ? "btn btn-primary watch" : "btn watch",
          href: watchUrl(nb.id, student.name),
          testid: "watch",
          dataset: { focusKey: `watch:${nb.id}` },
          title: studentIn
            ? `Open ${nb.path} and follow ${student.name} (read-only)`
            : `Open ${nb.path} (read-only); you will follow ${student.name} when they come in`,
        },
        icon("eye"),
        "Watch",
      ),
    ),
    hands.map(([username, hand]) =>
      h(
        "div",
        { class: "hand", testid: "hand", dataset: { username, notebookId: nb.id } },
        icon("hand"),
        h(
          "div",
          { class: "hand-text" },
          h("strong", null, username === student.name ? "Hand raised" : `${username} raised a hand`),
          hand.message ? h("span", { class: "hand-message", testid: "hand-message" }, `“${hand.message}”`) : null,
          h("span", { class: "muted small" }, timeElement(hand.raised_at, now)),
        ),
        h(
          "button",
          {
            type: "button",
            class: "btn btn-quiet",
            testid: "lower-hand",
            dataset: { username, focusKey: `lower:${nb.id}:${username}` },
            title: `Lower ${username}'s hand`,
            onclick: () => actions.lowerHand(nb.id, username),
          },
          "Lower",
        ),
      ),
    ),
  );
}

/**
 * @param {RecentError} error
 * @param {Student} student
 * @param {number} now
 */
function errorItem(error, student, now) {
  return h(
    "li",
    { class: "err", testid: "recent-error", dataset: { notebookId: error.notebook_id, cellId: error.cell_id || undefined } },
    icon("alert"),
    h(
      "div",
      { class: "err-text" },
      h("code", { class: "err-message", title: error.error }, error.error),
      h(
        "span",
        { class: "muted small" },
        "in ",
        h("a", { href: watchUrl(error.notebook_id, student.name), dataset: { focusKey: `err:${error.notebook_id}:${error.at}` } }, shortPath(error.path, student.name)),
        error.at ? [" · ", timeElement(error.at, now)] : null,
      ),
    ),
  );
}

/**
 * The student's card.
 * @param {Student} student
 * @param {CardActions} actions
 * @param {number} now seconds since the epoch
 */
export function studentCard(student, actions, now) {
  const hands = student.notebooks.reduce((n, nb) => n + Object.keys(nb.hands || {}).length, 0);
  // Open notebooks (someone is in them) first, then the rest by path.
  const open = student.notebooks.filter((nb) => nb.people.length || Object.keys(nb.hands || {}).length);
  const idle = student.notebooks.filter((nb) => !open.includes(nb));
  const shownIdle = idle.slice(0, Math.max(0, SHOWN_IDLE - open.length));
  const hiddenIdle = idle.slice(shownIdle.length);
  const lastActive = Math.max(0, ...student.notebooks.map((nb) => nb.last_activity || 0));

  return h(
    "article",
    {
      class: `student${student.active ? " active" : ""}${hands ? " has-hand" : ""}`,
      testid: "student",
      dataset: { student: student.name, active: String(student.active), hands: String(hands) },
      "aria-label": student.name,
    },
    h(
      "header",
      { class: "student-head" },
      avatar(student.name, { size: "m" }),
      h(
        "div",
        { class: "student-name" },
        h("h2", null, student.name),
        h(
          "span",
          { class: "status small", testid: "student-status" },
          h("span", { class: "dot", "aria-hidden": "true" }),
          student.active ? "Active now" : lastActive ? ["Away · last seen ", timeElement(lastActive, now)] : "Away",
        ),
      ),
      hands > 0 && h("span", { class: "hand-badge", title: `${hands} raised hand${hands > 1 ? "s" : ""}` }, icon("hand"), String(hands)),
    ),
    student.notebooks.length
      ? h(
          "ul",
          { class: "nbs", "aria-label": `${student.name}'s notebooks` },
          [...open, ...shownIdle].map((nb) => notebookItem(nb, student, actions, now)),
        )
      : h("p", { class: "muted empty-line" }, "No notebooks yet."),
    hiddenIdle.length > 0 &&
      h(
        "details",
        { class: "more", dataset: { key: "more" } },
        h("summary", { dataset: { focusKey: "more" } }, `${hiddenIdle.length} more notebook${hiddenIdle.length > 1 ? "s" : ""}`),
        h("ul", { class: "nbs" }, hiddenIdle.map((nb) => notebookItem(nb, student, actions, now))),
      ),
    student.recent_errors.length > 0 &&
      h(
        "section",
        { class: "errors" },
        h("h3", null, "Recent errors"),
        h("ul", null, student.recent_errors.map((e) => errorItem(e, student, now))),
      ),
  );
}
