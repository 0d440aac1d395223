// @ts-check
// What people do to the notebook: run cells, change the kernel, add, delete,
// move, retype, copy and paste cells, from the toolbar and from the keyboard
// (Jupyter's command mode and the editor's run keys).
//
// Exports: class Commands ({doc, view, api, notebookId, readOnly, toast, announce}).
//   run(ids), runActive({advance, insert}), runAll(), interrupt(), restart() (asks first),
//   insert("above" | "below", type?, fromId?, edit?), deleteActive(), undoDelete(), move(-1 | 1),
//   changeType(type), copy(), cut(), paste("above" | "below"),
//   editorKeys(cellView) (for ./editor.js), commandKey(event) (true if handled).
import * as model from "./model.js";
import { confirmDialog } from "./confirm.js";

/** @typedef {import("./cell.js").CellView} CellView */

export class Commands {
  /**
   * @param {{doc: import("yjs").Doc, view: import("./view.js").NotebookView,
   *   api: typeof import("../lib/api.js").api, notebookId: string, readOnly: boolean,
   *   toast: (text: string, kind?: string) => void,
   *   announce: (action: {kind: string, ids: string[], at: number}) => void}} options
   */
  constructor(options) {
    this.doc = options.doc;
    this.view = options.view;
    this.api = options.api;
    this.base = `/api/notebooks/${options.notebookId}`;
    this.readOnly = options.readOnly;
    this.toast = options.toast;
    this.announce = options.announce;
    /** Our own deleted cells, newest last, for Z. @type {Array<{snapshot: any, index: number}>} */
    this.deleted = [];
    /** Structure edits wait for the first sync: a copy that wrote before holding the
     * server's document could not be merged (the server would answer 4409). */
    this.synced = false;
    /** @type {any[]} */
    this.clipboard = [];
    this.lastKey = { key: "", at: 0 };
    /** Called with the ids sent to the kernel (presence shows "running"). */
    /** @type {Array<(ids: string[]) => void>} */
    this.onRun = [];
  }

  // ---- running ------------------------------------------------------------------------

  /** Run cells: code goes to the kernel; markdown is rendered. */
  /** @param {string[]} ids */
  async run(ids) {
    if (this.readOnly) return;
    /** @type {string[]} */
    const code = [];
    for (const id of ids) {
      const cell = this.view.byId(id);
      if (!cell) continue;
      if (cell.type === "markdown") cell.editMarkdown(false);
      else if (cell.type === "code") code.push(id);
    }
    if (!code.length) return;
    this.onRun.forEach((f) => f(code));
    try {
      await this.api.post(`${this.base}/execute`, { cell_ids: code });
    } catch (error) {
      this.toast(`Could not run: ${/** @type {Error} */ (error).message}`, "error");
    }
  }

  /**
   * Run the active cell (or `cell`); `advance` selects the next one (adding a
   * cell at the end, as Jupyter does); `insert` adds a new cell below.
   * @param {{advance?: boolean, insert?: boolean, cell?: CellView}} options
   */
  runActive({ advance = false, insert = false, cell } = {}) {
    const view = cell || this.view.active;
    if (!view) return;
    this.run([view.id]);
    if (this.readOnly) return;
    if (insert) {
      this.insert("below", "code", undefined, true);
      return;
    }
    if (!advance) {
      if (view.type === "markdown") this.view.select(view.id);
      return;
    }
    const index = this.view.indexOf(view.id);
    const next = this.view.views[index + 1];
    if (next) this.view.select(next.id, { scroll: true });
    else this.insert("below", "code", view.id, true);
  }

  runAll() {
    this.run(this.view.views.map((v) => v.id));
  }

  async interrupt() {
    await this.kernelAction("interrupt");
  }

  /** Restarting stops everyone's running code and forgets every variable: ask first. */
  async restart() {
    if (this.readOnly) return;
    const sure = await confirmDialog({
      title: "Restart the kernel?",
      text: "This restarts the kernel for everyone in this notebook: running code stops and all variables are lost.",
      ok: "Restart",
    });
    if (sure) await this.kernelAction("restart");
  }

  /** @param {string} action */
  async kernelAction(action) {
    if (this.readOnly) return;
    try {
      await this.api.post(`${this.base}/kernel/${action}`);
    } catch (error) {
      this.toast(`Could not ${action} the kernel: ${/** @type {Error} */ (error).message}`, "error");
    }
  }

  // ---- structure ----------------------------------------------------------------------

  /**
   * @param {"above" | "below"} where @param {model.CellType} [type]
   * @param {string} [fromId] the cell to insert next to (default: the active one)
   * @param {boolean} [edit] put the caret in it (else command mode, as A and B do in Jupyter)
   */
  insert(where, type = "code", fromId, edit = false) {
    if (this.readOnly || !this.synced) return null;
    const anchor = fromId ?? this.view.activeId;
    const index = anchor ? model.indexOfCell(this.doc, anchor) : -1;
    const at = index < 0 ? (where === "above" ? 0 : model.cellsOf(this.doc).length) : where === "above" ? index : index + 1;
    const id = model.insertCell(this.doc, at, type);
    this.view.select(id, { edit, scroll: true });
    return id;
  }

  deleteActive() {
    const id = this.view.activeId;
    if (this.readOnly || !this.synced || !id) return;
    const snapshot = model.cellSnapshot(this.doc, id);
    if (!snapshot) return;
    this.deleted.push({ snapshot, index: model.indexOfCell(this.doc, id) });
    if (this.deleted.length > 50) this.deleted.shift();
    // Who deleted it, for the pages of people typing in it (./ghost.js).
    this.announce({ kind: "delete", ids: [id], at: Date.now() });
    model.deleteCells(this.doc, [id]);
  }

  /** Z: put back the last cell we deleted, with its id, where it was. */
  undoDelete() {
    if (this.readOnly || !this.synced) return;
    while (this.deleted.length) {
      const { snapshot, index } = /** @type {{snapshot: any, index: number}} */ (this.deleted.pop());
      const id = model.restoreCell(this.doc, index, snapshot);
      if (id) {
        this.view.select(id, { scroll: true });
        return;
      }
    }
  }

  /** @param {-1 | 1} delta */
  move(delta) {
    const id = this.view.activeId;
    if (this.readOnly || !id) return;
    if (model.moveCell(this.doc, id, delta)) {
      const view = this.view.byId(id);
      if (view) this.view.reveal(view);
    }
  }

  /** @param {model.CellType} type */
  changeType(type) {
    const id = this.view.activeId;
    if (this.readOnly || !id) return;
    const editing = this.view.mode === "edit";
    model.changeCellType(this.doc, id, type);
    if (editing) this.view.select(id, { edit: true });
  }

  copy() {
    const id = this.view.activeId;
    const snapshot = id ? model.cellSnapshot(this.doc, id) : null;
    if (snapshot) this.clipboard = [snapshot];
  }

  cut() {
    if (this.readOnly) return;
    this.copy();
    this.deleteActive();
  }

  /** @param {"above" | "below"} where */
  paste(where) {
    if (this.readOnly || !this.synced || !this.clipboard.length) return;
    const anchor = this.view.activeId;
    let index = anchor ? model.indexOfCell(this.doc, anchor) : -1;
    index = index < 0 ? model.cellsOf(this.doc).length : where === "above" ? index : index + 1;
    let last = null;
    for (const snapshot of this.clipboard) last = model.insertSnapshot(this.doc, index++, snapshot);
    if (last) this.view.select(last, { scroll: true });
  }

  // ---- keys ---------------------------------------------------------------------------

  /** The notebook keys of a cell's editor. */
  /** @param {CellView} cell */
  editorKeys(cell) {
    return {
      runAndAdvance: () => (this.runActive({ advance: true, cell }), true),
      runInPlace: () => (this.runActive({ cell }), true),
      runAndInsert: () => (this.runActive({ insert: true, cell }), true),
      commandMode: () => {
        this.view.select(cell.id);
        return true;
      },
      leaveUp: () => this.leave(cell, -1),
      leaveDown: () => this.leave(cell, 1),
      save: () => (this.saved(), true),
    };
  }

  /** Arrow keys past the first/last line go on to the neighbouring cell's editor. */
  /** @param {CellView} cell @param {-1 | 1} delta */
  leave(cell, delta) {
    const next = this.view.views[this.view.indexOf(cell.id) + delta];
    if (!next) return false;
    if (next.type === "markdown" && !next.editingMarkdown) {
      this.view.select(next.id, { scroll: true });
    } else {
      this.view.select(next.id, { edit: true, where: delta < 0 ? "end" : "start", scroll: true });
    }
    return true;
  }

  saved() {
    this.toast("Saved: changes are saved automatically as you type.");
  }

  /**
   * Jupyter's command mode, for a keydown outside any editor or input.
   * @param {KeyboardEvent} event @returns {boolean} whether it was handled
   */
  commandKey(event) {
    const key = event.key;
    const mod = event.ctrlKey || event.metaKey;
    const active = this.view.active;
    const double = (/** @type {string} */ k) => {
      const now = Date.now();
      const hit = this.lastKey.key === k && now - this.lastKey.at < 800;
      this.lastKey = hit ? { key: "", at: 0 } : { key: k, at: now };
      return hit;
    };
    if (mod && key.toLowerCase() === "s") return this.saved(), true;
    if (mod && event.shiftKey && (key === "ArrowUp" || key === "ArrowDown")) {
      return this.move(key === "ArrowUp" ? -1 : 1), true;
    }
    if (key === "Enter" && event.shiftKey) return this.runActive({ advance: true }), true;
    if (key === "Enter" && mod) return this.runActive(), true;
    if (key === "Enter" && event.altKey) return this.runActive({ insert: true }), true;
    if (mod || event.altKey) return false;
    const step = (/** @type {number} */ delta) => {
      const index = active ? this.view.indexOf(active.id) : -1;
      const next = this.view.views[Math.max(0, Math.min(this.view.views.length - 1, index + delta))];
      if (next) this.view.select(next.id, { scroll: true });
    };
    switch (key) {
      case "ArrowUp": case "k": return step(-1), true;
      case "ArrowDown": case "j": return step(1), true;
      case "Home": return this.view.views[0] && this.view.select(this.view.views[0].id, { scroll: true }), true;
      case "End": {
        const last = this.view.views[this.view.views.length - 1];
        if (last) this.view.select(last.id, { scroll: true });
        return true;
      }
      case "Enter":
        if (active && !this.readOnly) this.view.select(active.id, { edit: true, where: "end" });
        return true;
      case "c": return this.copy(), true;
    }
    if (this.readOnly) return false;
    switch (key) {
      case "a": return this.insert("above"), true;
      case "b": return this.insert("below"), true;
      case "d": if (double("d")) this.deleteActive(); return true;
      case "i": if (double("i")) this.interrupt(); return true;
      case "0": if (double("0")) this.restart(); return true;
      case "m": return this.changeType("markdown"), true;
      case "y": return this.changeType("code"), true;
      case "r": return this.changeType("raw"), true;
      case "x": return this.cut(), true;
      case "v": return this.paste("below"), true;
      case "z": return this.undoDelete(), true;
      case "V": return this.paste("above"), true;
    }
    return false;
  }
}
