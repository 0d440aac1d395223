// @ts-check
// The notebook page (/notebooks/<id>): the shared document over y-websocket,
// the cells (./notebook/view.js), running them, presence and follow mode, and
// the history panel's mount point. See web/README.md for the DOM contract.
//
// The person's role starts as the boot data says and follows the server's role
// messages (./notebook/connection.js): the page turns read-only or editable in
// place. The notebook's path follows the document's `state` map (a rename).
import "./lib/base.css";
import "./notebook/notebook.css";
import * as Y from "yjs";
import { api } from "./lib/api.js";
import { readBoot } from "./lib/boot.js";
import { h } from "./lib/dom.js";
import { connect } from "./notebook/connection.js";
import { NotebookView } from "./notebook/view.js";
import { Commands } from "./notebook/commands.js";
import { ExecutionState } from "./notebook/execution.js";
import { Presence } from "./notebook/presence.js";
import { Roster } from "./notebook/roster.js";
import { Follow } from "./notebook/follow.js";
import { createNotices } from "./notebook/notices.js";
import { createToolbar } from "./notebook/toolbar.js";
import { icon } from "./notebook/icons.js";
import { keepUnsaved, showKept } from "./notebook/kept.js";
import { mountHistory } from "./history/panel.js";
import { downloadMenu } from "./lib/downloads.js";
import { KernelHelp } from "./notebook/completion.js";
import { kernelChooser } from "./notebook/kernelspec.js";
import { ownerActions } from "./notebook/file-actions.js";
import { labelCells } from "./notebook/labels.js";
import { themeSelect } from "./lib/theme.js";
import { onOutputTheme } from "./notebook/frame.js";

const boot = readBoot();
const notebook = /** @type {import("./lib/boot.js").BootNotebook} */ (boot.notebook);
let role = notebook.role;
let readOnly = role === "viewer";
const me = boot.user.name;
const app = /** @type {HTMLElement} */ (document.getElementById("app"));

// ---- the page's frame -----------------------------------------------------------------

const connection = h("span", { class: "connection", testid: "connection", role: "status" }, "connecting");
const kernelStatus = h("span", { class: "kernel-status", testid: "kernel-status" }, "no kernel");
const historyToggle = h("button", {
  type: "button", class: "btn btn-quiet", testid: "history-toggle", "aria-expanded": "false",
  title: "Show the history of executions",
}, icon("history"), "History");
const cellsEl = h("div", { class: "nb-cells", "aria-label": "Cells" });
const scroller = h("main", { class: "nb-scroller" }, cellsEl);
const historyPanel = h("aside", { class: "nb-history", testid: "history", hidden: true, "aria-label": "History" });
const side = h("aside", { class: "nb-side", id: "people-panel", "aria-label": "People" });
// On a phone the roster is a drawer over the cells, opened from the header.
const peopleToggle = h("button", {
  type: "button", class: "btn btn-quiet people-toggle", testid: "people-toggle",
  "aria-expanded": "false", "aria-controls": "people-panel", title: "Show who is here",
  onclick: () => showPeople(!app.classList.contains("people-open")),
}, "People");
/** @param {boolean} open */
function showPeople(open) {
  app.classList.toggle("people-open", open);
  peopleToggle.setAttribute("aria-expanded", String(open));
}
/** @param {KeyboardEvent} event */
const closePeopleOnEscape = (event) => {
  if (event.key === "Escape" && app.classList.contains("people-open")) {
    showPeople(false);
    peopleToggle.focus();
  }
};
side.addEventListener("keydown", closePeopleOnEscape);
peopleToggle.addEventListener("keydown", closePeopleOnEscape);
const messages = h("div", { class: "nb-messages" });
const keptBox = h("div", { class: "nb-messages" });
const followBanner = h("div", { class: "nb-follow" });
const toolbarSlot = h("div", { class: "nb-toolbar-slot" });
const pathEl = h("nav", { class: "nb-path", testid: "notebook-path", "aria-label": "Notebook path" });
const roleBadge = h("span", { class: "badge", testid: "role-badge" });
const downloadSlot = h("span", { class: "nb-download" });
const owner = ownerActions({
  notebookId: notebook.id, me, api, notice: (text, testid) => notice(text, testid), path: () => pathEl.dataset.path || notebook.path,
});
const ownerSlot = owner.el;
const kernelChoiceSlot = h("span", { class: "kernel-choice-slot" });
app.replaceChildren(
  h("header", { class: "nb-top" },
    h("div", { class: "nb-header" },
      h("a", { class: "brand", href: "/", title: "Your notebooks" }, "collab-server"),
      pathEl,
      roleBadge,
      h("span", { class: "spacer" }),
      h("span", { class: "kernel" }, h("span", { class: "kernel-label" }, "Kernel"), kernelChoiceSlot, kernelStatus),
      connection,
      ownerSlot,
      downloadSlot,
      historyToggle,
      peopleToggle,
      themeSelect()),
    toolbarSlot),
  messages,
  keptBox,
  // The follow banner floats over the cells: showing or hiding it must not move
  // what is under the pointer (a click that ends follow mode must land).
  h("div", { class: "nb-body" }, scroller, followBanner, historyPanel, side),
);
const notice = createNotices(document.body);
showKept(notebook.id, keptBox);

/** The path as breadcrumbs (each folder opens the list there), and the tab's title. */
/** @param {string} path */
function showPath(path) {
  const parts = path.split("/");
  const crumbs = [];
  for (let i = 0; i < parts.length - 1; i++) {
    const folder = parts.slice(0, i + 1).join("/");
    crumbs.push(h("a", { href: `/?path=${encodeURIComponent(folder)}`, class: "crumb", testid: "crumb" }, parts[i]), h("span", { class: "crumb-sep" }, "/"));
  }
  crumbs.push(h("span", { class: "crumb-name", testid: "notebook-name" }, parts[parts.length - 1]));
  pathEl.replaceChildren(...crumbs);
  pathEl.title = path;
  pathEl.dataset.path = path;
  downloadSlot.replaceChildren(downloadMenu(notebook.id, path));
  document.title = `${parts[parts.length - 1]} · collab-server`;
  const here = new URLSearchParams(location.search);
  if (here.has("path") && here.get("path") !== path) {
    here.set("path", path);
    history.replaceState(history.state, "", `${location.pathname}?${here}`);
  }
}
showPath(notebook.path);

function showRole() {
  owner.setRole(role);
  roleBadge.textContent = role === "viewer" ? "view only" : role;
  roleBadge.className = `badge ${role === "viewer" ? "view-only" : "role"}`;
  roleBadge.dataset.role = role;
  roleBadge.title = role === "viewer" ? "You can watch and run nothing" : role === "owner" ? "You own this notebook" : "You can edit and run";
}
showRole();

// ---- the document -----------------------------------------------------------------------

const doc = new Y.Doc();
const kernelChoice = kernelChooser({ doc, api, notebookId: notebook.id, notice });
kernelChoice.setReadOnly(readOnly);
kernelChoiceSlot.replaceChildren(kernelChoice.el);
let presence = /** @type {Presence | null} */ (null);
let roster = /** @type {Roster | null} */ (null);
let executions = /** @type {ExecutionState | null} */ (null);
let firstSync = true;
let noticeTimer = 0;
const { awareness } = connect({
  doc,
  notebookId: notebook.id,
  indicator: connection,
  messageBox: messages,
  onSynced() {
    if (firstSync) {
      firstSync = false;
      performance.mark("notebook-synced");
      app.dataset.synced = "true";
      executions?.ready();
      commands.synced = true;
      if (!view.views.length) {
        app.dataset.usable = "true";
        performance.mark("notebook-usable");
      }
      const follow = new URLSearchParams(location.search).get("follow");
      if (follow) followMode.start(follow);
    }
    showEmpty();
    presence?.updateScroll();
    clearTimeout(noticeTimer);
    noticeTimer = window.setTimeout(() => roster?.setNotices(true), 1000);
  },
  onStatus(state) {
    if (state !== "connected") {
      clearTimeout(noticeTimer);
      roster?.setNotices(false);
    }
  },
  onRole(next) {
    setRole(next);
  },
  onResync(reason) {
    void resync(reason);
  },
});

// ---- the role, changed in place ---------------------------------------------------------

/** @param {"viewer" | "editor" | "owner"} next */
function setRole(next) {
  if (next === role) return;
  const wasReadOnly = readOnly;
  role = next;
  readOnly = role === "viewer";
  showRole();
  view.setReadOnly(readOnly);
  commands.readOnly = readOnly;
  kernelChoice.setReadOnly(readOnly);
  presence?.setRole(role);
  if (roster) roster.options.role = role;
  toolbar.hidden = readOnly;
  addCell.hidden = readOnly;
  if (readOnly !== wasReadOnly) {
    if (readOnly && view.mode === "edit") view.active?.el.focus({ preventScroll: true });
    notice(readOnly ? "You can now only view this notebook." : `You can edit this notebook again (${role}).`, "role-notice");
  }
}

// ---- resync: the server refused our change or cannot merge our copy --------------------

let resyncing = false;
// Reloading by itself again and again would hide a problem: after a few, ask.
const RESYNCS_KEY = `collab-server:resyncs:${notebook.id}`;
const MAX_RESYNCS = 5;
const RESYNC_WINDOW_MS = 60_000;

/** @param {string} text @param {boolean} button */
function resyncMessage(text, button) {
  messages.replaceChildren(h("div", { class: "connection-message", testid: "connection-message", role: "alert" },
    h("span", null, text),
    button ? h("button", { type: "button", class: "btn btn-primary", testid: "reload", onclick: () => location.reload() }, "Reload") : null));
}

/** @param {string} reason */
async function resync(reason) {
  if (resyncing) return;
  resyncing = true;
  view.setReadOnly(true);
  commands.readOnly = true;
  resyncMessage("Your copy of the notebook is out of date; reloading it from the server.", false);
  try {
    await keepUnsaved(doc, notebook.id, reason);
  } catch (error) {
    resyncMessage(`Your copy of the notebook is out of date and the server cannot be asked what it holds (${/** @type {Error} */ (error).message}). Copy what you need, then reload.`, true);
    return;
  }
  /** @type {number[]} */
  let recent = [];
  try {
    recent = JSON.parse(sessionStorage.getItem(RESYNCS_KEY) || "[]");
  } catch {
    recent = [];
  }
  const now = Date.now();
  recent = recent.filter((t) => now - t < RESYNC_WINDOW_MS);
  if (recent.length >= MAX_RESYNCS) {
    showKept(notebook.id, keptBox);
    resyncMessage("Your copy of the notebook is out of date. Reload to get the server's copy.", true);
    return;
  }
  sessionStorage.setItem(RESYNCS_KEY, JSON.stringify([...recent, now]));
  location.reload();
}

/** @type {Commands} */
let commands;
const view = new NotebookView({
  doc,
  container: cellsEl,
  scroller,
  awareness,
  readOnly,
  me,
  keys: (cell) => commands.editorKeys(cell),
  help: new KernelHelp({ api, notebookId: notebook.id }),
  answerInput: async (executionId, value) => {
    try {
      await api.post(`/api/notebooks/${notebook.id}/input`, { execution_id: executionId, value });
    } catch (error) {
      notice(`Could not send your input: ${/** @type {Error} */ (error).message}`, "error");
      throw error;
    }
  },
});
labelCells(view);
onOutputTheme();
commands = new Commands({
  doc, view, api, notebookId: notebook.id, readOnly, toast: notice,
  announce: (action) => presence?.set("action", action),
});

const addCell = h("button", {
  type: "button", class: "btn btn-primary", hidden: readOnly,
  onclick: () => commands.insert("below", "code", undefined, true),
}, "Add a cell");
const empty = h("div", { class: "nb-empty" }, h("p", null, "This notebook has no cells yet."), addCell);
scroller.append(empty);
const showEmpty = () => {
  empty.hidden = view.views.length > 0 || !app.dataset.synced;
};
view.on("changed", showEmpty);
showEmpty();

const toolbar = createToolbar(commands, view);
toolbar.hidden = readOnly;
toolbarSlot.replaceWith(toolbar);

// A rename (by anyone) reaches this page through the document's `state` map.
const docState = doc.getMap("state");
docState.observe((event) => {
  const path = docState.get("path");
  if (event.keysChanged.has("path") && typeof path === "string" && path) showPath(path);
});

executions = new ExecutionState({ doc, view, me, statusEl: kernelStatus, notice });
presence = new Presence({ awareness, view, identity: boot.user.identity, role: notebook.role });
executions.onMine((running) => presence?.setRunning(running));
const followMode = new Follow({ banner: followBanner, presence, view, me, notice });
roster = new Roster({
  root: side, doc, presence, view, follow: followMode, api, notebookId: notebook.id,
  me, role: notebook.role, tutor: boot.user.tutor, notice,
});
window.addEventListener("resize", () => presence?.updateScroll());

// ---- keyboard: Jupyter's command mode ---------------------------------------------------

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.isComposing) return;
  const target = /** @type {HTMLElement} */ (event.target);
  const inNotebook = target === document.body || scroller.contains(target);
  if (!inNotebook) return;
  if (target.closest(".cm-editor, .cell-ghost, input, textarea, select, [contenteditable=true]")) return;
  if (target.closest("button, a") && (event.key === "Enter" || event.key === " ")) return;
  if (commands.commandKey(event)) event.preventDefault();
});

// ---- history panel (web/src/history/panel.js owns its content) -------------------------

/** @type {any} */
let history = null;
historyToggle.addEventListener("click", () => {
  const open = historyPanel.hidden === true;
  historyPanel.hidden = !open;
  historyToggle.setAttribute("aria-expanded", String(open));
  app.classList.toggle("history-open", open);
  if (open && !history) {
    history = mountHistory(historyPanel, {
      notebookId: notebook.id,
      api,
      boot,
      jumpToCell: (cellId) => view.goTo(cellId),
      currentSource(cellId) {
        const cell = view.byId(cellId);
        return cell ? cell.text : null;
      },
    }) || {};
  }
  if (open) (history?.onShow || history?.refresh)?.call(history);
  else history?.onHide?.();
});

// ---- "usable": cells rendered and the first editors live -------------------------------

cellsEl.addEventListener("editors-mounted", () => {
  if (app.dataset.usable || !app.dataset.synced) return;
  app.dataset.usable = "true";
  performance.mark("notebook-usable");
});
