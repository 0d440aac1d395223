// @ts-check
// Rows of the notebook list: one folder's entries and the notebooks shared
// with you, each notebook with who is in it right now and its actions. Other
// files (a .csv a kernel wrote) are rows of their own: no opening as a
// notebook, no sharing, a download by path.
import { h, fill, encodePath } from "./dom.js";
import { avatar } from "./people.js";
import { icon } from "./icons.js";
import { timeElement } from "./time.js";
import { downloadMenu } from "../lib/downloads.js";
import { openPreview, previewable } from "./preview.js";

/**
 * @typedef {{name: string, path: string, type: "directory" | "notebook" | "file",
 *   id: string | null, size: number | null, last_modified: number}} Entry
 * `id` is set for notebooks only; `size` is null for folders.
 * @typedef {{username: string, role: string}} Person
 * @typedef {{[notebookId: string]: Person[]}} Presence
 * @typedef {{
 *   open: (entry: Entry) => void,
 *   share: (entry: Entry) => void,
 *   rename: (entry: Entry, row: HTMLElement) => void,
 *   remove: (entry: Entry) => void,
 * }} RowActions
 */

const MAX_AVATARS = 5;

/**
 * Fill an active-people cell with avatars of who is in the notebook.
 * @param {HTMLElement} cell
 * @param {Person[]} people
 */
export function showPeople(cell, people) {
  const key = people.map((p) => `${p.username}:${p.role}`).join(",");
  if (cell.dataset.people === key) return;
  cell.dataset.people = key;
  cell.dataset.count = String(people.length);
  cell.setAttribute(
    "aria-label",
    people.length ? `Active now: ${people.map((p) => p.username).join(", ")}` : "Nobody is in it",
  );
  const shown = people.slice(0, MAX_AVATARS).map((p) => avatar(p.username, { role: p.role }));
  const more = people.length - shown.length;
  fill(cell, shown, more > 0 && h("span", { class: "avatar avatar-s avatar-more", title: people.slice(MAX_AVATARS).map((p) => p.username).join(", ") }, `+${more}`));
}

/**
 * Update every notebook row on the page with the latest presence.
 * @param {ParentNode} root
 * @param {Presence} presence
 */
export function updatePresence(root, presence) {
  for (const row of root.querySelectorAll("[data-testid=notebook-row]")) {
    const id = /** @type {HTMLElement} */ (row).dataset.notebookId || "";
    const cell = row.querySelector("[data-testid=active-people]");
    if (cell) showPeople(/** @type {HTMLElement} */ (cell), presence[id] || []);
  }
}

/**
 * A small action button.
 * @param {string} testid
 * @param {string} label
 * @param {string} text
 * @param {() => void} onclick
 */
function action(testid, label, text, onclick) {
  return h("button", { type: "button", class: "btn btn-quiet", testid, "aria-label": label, title: label, onclick }, text);
}

/**
 * The size of a file, for people.
 * @param {number | null} size
 */
function fileSize(size) {
  if (size === null || size === undefined) return "";
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${Math.round(size / 1024)} KB`;
  return `${(size / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * Where to download a file that is not a notebook (notebooks have downloadMenu).
 * @param {Entry} entry
 */
export function downloadUrl(entry) {
  return `/api/files/${encodePath(entry.path)}?download=1`;
}

/**
 * The entry's name: a link that opens a folder or a notebook; plain text for a file.
 * @param {Entry} entry
 * @param {RowActions} actions
 */
function nameOf(entry, actions) {
  if (entry.type === "file")
    return h("span", { class: "entry-name", testid: "file-name" }, icon("file"), h("span", { class: "entry-label" }, entry.name));
  const isFolder = entry.type === "directory";
  return h(
    "a",
    {
      href: isFolder ? `/?path=${encodeURIComponent(entry.path)}` : `/notebooks/${entry.id}`,
      class: "entry-name",
      testid: "open",
      onclick: (/** @type {MouseEvent} */ event) => {
        if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
        event.preventDefault();
        actions.open(entry);
      },
    },
    icon(isFolder ? "folder" : "notebook"),
    h("span", { class: "entry-label" }, entry.name),
  );
}

/** @type {Record<Entry["type"], string>} */
const ROW_TESTIDS = { directory: "folder-row", notebook: "notebook-row", file: "file-row" };

/**
 * One row of the folder listing or of "shared with me".
 * @param {Entry} entry
 * @param {{role: string, presence: Presence, actions: RowActions, showFolder?: boolean,
 *   canManage: boolean, now: number}} options
 */
export function entryRow(entry, { role, presence, actions, showFolder = false, canManage, now }) {
  const isFolder = entry.type === "directory";
  const isNotebook = entry.type === "notebook";
  const folder = showFolder ? entry.path.split("/").slice(0, -1).join("/") : "";
  const people = h("span", { class: "people", testid: "active-people", role: "group" }); // named by showPeople
  if (isNotebook) showPeople(people, (entry.id && presence[entry.id]) || []);

  /** @type {HTMLElement[]} */
  const buttons = [];
  if (isNotebook && role === "owner") buttons.push(action("share", `Share ${entry.name}`, "Share", () => actions.share(entry)));
  if (previewable(entry)) buttons.push(action("preview", `Preview ${entry.name}`, "Preview", () => openPreview(entry, downloadUrl(entry))));
  if (isNotebook && entry.id) buttons.push(downloadMenu(entry.id, entry.path));
  else if (entry.type === "file")
    buttons.push(
      h(
        "a",
        {
          class: "btn btn-quiet",
          testid: "download",
          href: downloadUrl(entry),
          download: entry.name,
          title: `Download ${entry.name}`,
          "aria-label": `Download ${entry.name}`,
        },
        "Download",
      ),
    );
  if (canManage) {
    buttons.push(action("rename", `Rename ${entry.name}`, "Rename", () => actions.rename(entry, row)));
    buttons.push(action("delete", `Delete ${entry.name}`, "Delete", () => actions.remove(entry)));
  }
  for (const button of buttons) button.dataset.path = entry.path;

  const row = h(
    "tr",
    {
      testid: ROW_TESTIDS[entry.type],
      dataset: { path: entry.path, notebookId: entry.id || undefined, role: isNotebook ? role : undefined },
    },
    h(
      "td",
      { class: "col-name" },
      nameOf(entry, actions),
      folder && h("span", { class: "muted entry-folder" }, ` in ${folder}`),
    ),
    h("td", { class: "col-role" }, isNotebook && showFolder && h("span", { class: `tag tag-${role}`, testid: "role" }, role)),
    h("td", { class: "col-people" }, people),
    h(
      "td",
      { class: "col-modified" },
      entry.last_modified ? timeElement(entry.last_modified, now) : "",
      !isFolder && h("span", { class: "muted small size", testid: "size" }, fileSize(entry.size)),
    ),
    h("td", { class: "col-actions" }, h("div", { class: "row-actions" }, buttons)),
  );
  return row;
}

/**
 * A table of rows with its column heads.
 * @param {string} testid
 * @param {string} caption
 * @param {HTMLElement[]} rows
 */
export function entryTable(testid, caption, rows) {
  return h(
    "table",
    { class: "entries", testid },
    h("caption", { class: "visually-hidden" }, caption),
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        h("th", { scope: "col", class: "col-name" }, "Name"),
        h("th", { scope: "col", class: "col-role" }, ""),
        h("th", { scope: "col", class: "col-people" }, "Active now"),
        h("th", { scope: "col", class: "col-modified" }, "Modified"),
        h("th", { scope: "col", class: "col-actions" }, h("span", { class: "visually-hidden" }, "Actions")),
      ),
    ),
    h("tbody", null, rows),
  );
}
