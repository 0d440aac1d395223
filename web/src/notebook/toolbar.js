// The notebook toolbar (editors and owners only): add, cut/copy/paste, move,
// run, run all, interrupt, restart, cell type, as JupyterLab lays it out.
//
// Exports: createToolbar(commands, view) -> HTMLElement; its type select follows
// the active cell.
import { h } from "../lib/dom.js";
import { icon } from "./icons.js";

/**
 * @param {import("./commands.js").Commands} commands
 * @param {import("./view.js").NotebookView} view
 */
export function createToolbar(commands, view) {
  const button = (/** @type {string} */ testid, /** @type {string} */ name,
    /** @type {string} */ title, /** @type {() => void} */ action) =>
    h("button", {
      type: "button", class: "btn btn-quiet btn-icon", testid, title, "aria-label": title,
      onclick: (/** @type {MouseEvent} */ event) => {
        action();
        // Back to the notebook, as JupyterLab does, unless an editor took the keyboard.
        if (document.activeElement === event.currentTarget) view.active?.el.focus({ preventScroll: true });
      },
    }, icon(name));
  const type = /** @type {HTMLSelectElement} */ (h("select", {
    testid: "cell-type", title: "Cell type", "aria-label": "Cell type",
    onchange: () => {
      commands.changeType(/** @type {any} */ (type.value));
      view.active?.el.focus({ preventScroll: true });
    },
  },
  h("option", { value: "code" }, "Code"),
  h("option", { value: "markdown" }, "Markdown"),
  h("option", { value: "raw" }, "Raw")));
  const syncType = () => {
    const active = view.active;
    type.value = active ? active.type : "code";
    type.disabled = !active;
  };
  view.on("active", syncType);
  view.on("changed", syncType);
  syncType();
  const sep = () => h("span", { class: "toolbar-sep" });
  return h("div", { class: "nb-toolbar", role: "toolbar", "aria-label": "Notebook" },
    button("add-cell", "plus", "Insert a cell below (B)", () => commands.insert("below")),
    button("cut-cell", "cut", "Cut the cell (X)", () => commands.cut()),
    button("copy-cell", "copy", "Copy the cell (C)", () => commands.copy()),
    button("paste-cell", "paste", "Paste below (V)", () => commands.paste("below")),
    button("move-up", "up", "Move the cell up (Ctrl+Shift+↑)", () => commands.move(-1)),
    button("move-down", "down", "Move the cell down (Ctrl+Shift+↓)", () => commands.move(1)),
    button("delete-cell", "trash", "Delete the cell (D, D)", () => commands.deleteActive()),
    sep(),
    button("run", "play", "Run the cell and select the next (Shift+Enter)", () => commands.runActive({ advance: true })),
    button("run-all", "runall", "Run all cells", () => commands.runAll()),
    button("interrupt", "stop", "Interrupt the kernel (I, I)", () => commands.interrupt()),
    button("restart", "restart", "Restart the kernel (0, 0)", () => commands.restart()),
    sep(),
    type);
}
