// The notebook page (/notebooks/<id>): the shared document over y-websocket,
// the cells (./notebook/view.js), running them, presence and follow mode, and
// the history panel's mount point. See web/README.md for the DOM contract.
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
import { mountHistory } from "./history/panel.js";

const boot = readBoot();
const notebook = /** @type {import("./lib/boot.js").BootNotebook} */ (boot.notebook);
const readOnly = notebook.role === "viewer";
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
const side = h("aside", { class: "nb-side" });
const messages = h("div", { class: "nb-messages" });
const followBanner = h("div", { class: "nb-follow" });
const toolbarSlot = h("div", { class: "nb-toolbar-slot" });
app.replaceChildren(
  h("header", { class: "nb-header" },
    h("a", { class: "brand", href: "/", title: "Your notebooks" }, "collab-server"),
    h("span", { class: "nb-path", title: notebook.path }, notebook.path),
    readOnly ? h("span", { class: "badge view-only", title: "You can watch and run nothing" }, "view only") : null,
    h("span", { class: "spacer" }),
    h("span", { class: "kernel" }, h("span", { class: "kernel-label" }, "Kernel"), kernelStatus),
    connection,
    historyToggle),
  toolbarSlot,
  messages,
  // The follow banner floats over the cells: showing or hiding it must not move
  // what is under the pointer (a click that ends follow mode must land).
  h("div", { class: "nb-body" }, scroller, followBanner, historyPanel, side),
);
const notice = createNotices(document.body);

// ---- the document -----------------------------------------------------------------------

const doc = new Y.Doc();
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
  onPermissionDenied(reason) {
    notice(`Your change was not saved: ${reason}`, "error");
  },
});

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
  answerInput: async (executionId, value) => {
    try {
      await api.post(`/api/notebooks/${notebook.id}/input`, { execution_id: executionId, value });
    } catch (error) {
      notice(`Could not send your input: ${/** @type {Error} */ (error).message}`, "error");
      throw error;
    }
  },
});
commands = new Commands({ doc, view, api, notebookId: notebook.id, readOnly, toast: notice });

const empty = h("div", { class: "nb-empty" },
  h("p", null, "This notebook has no cells yet."),
  readOnly ? null : h("button", { type: "button", class: "btn btn-primary", onclick: () => commands.insert("below") }, "Add a cell"));
scroller.append(empty);
const showEmpty = () => {
  empty.hidden = view.views.length > 0 || !app.dataset.synced;
};
view.on("changed", showEmpty);
showEmpty();

if (!readOnly) toolbarSlot.replaceWith(createToolbar(commands, view));
else toolbarSlot.remove();

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
  if (target.closest(".cm-editor, input, textarea, select, [contenteditable=true]")) return;
  if (target.closest("button, a") && (event.key === "Enter" || event.key === " ")) return;
  if (commands.commandKey(event)) event.preventDefault();
});

// ---- history panel (web/src/history/panel.js owns its content) -------------------------

/** @type {any} */
let history = null;
historyToggle.addEventListener("click", () => {
  const open = historyPanel.hidden;
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
