// @ts-check
// The list of cells on the page, in the document's order, kept in step with the
// `cells` Y.Array (inserts, deletes, and moves = delete + insert of a new Y.Map
// with the same id). Owns the selection (the active cell), command/edit mode,
// scrolling to a cell, and lazy editors: cells get their CodeMirror editor when
// they come near the viewport (IntersectionObserver) and give it back when far,
// so a 1,000-cell notebook renders at once and stays light.
//
// Exports: class NotebookView.
import { CellView } from "./cell.js";
import { Ghost } from "./ghost.js";
import * as model from "./model.js";

const MOUNT_MARGIN = "900px 0px";
const UNMOUNT_MARGIN = "3000px 0px";
// Mounting editors: generous while the page opens (nothing to scroll yet), then
// small slices so scrolling stays smooth.
const FIRST_BUDGET_MS = 30;
const FRAME_BUDGET_MS = 8;

/**
 * @typedef {{
 *   doc: import("yjs").Doc, container: HTMLElement, scroller: HTMLElement,
 *   awareness: any, readOnly: boolean, me: string,
 *   keys: (view: CellView) => Record<string, (editor: any) => boolean>,
 *   answerInput: (executionId: string, value: string) => Promise<void>,
 *   help?: import("./completion.js").KernelHelp,
 * }} ViewOptions
 */

export class NotebookView {
  /** @param {ViewOptions} options */
  constructor(options) {
    this.doc = options.doc;
    this.container = options.container;
    this.scroller = options.scroller;
    this.readOnly = options.readOnly;
    this.cells = model.cellsOf(this.doc);
    /** @type {Ghost | null} */
    this.ghost = null;
    // Holds a deleted cell's place while a change is applied.
    this.placeholder = document.createElement("div");
    /** @type {CellView[]} */
    this.views = [];
    /** @type {string | null} */
    this.activeId = null;
    /** Listeners: each called with the view or id concerned. */
    this.listeners = {
      /** @type {Array<(view: CellView) => void>} */ created: [],
      /** @type {Array<(id: string | null) => void>} */ active: [],
      /** @type {Array<(view: CellView) => void>} */ typed: [],
      /** @type {Array<() => void>} */ changed: [],
      /** @type {Array<(view: CellView) => void>} */ source: [],
    };
    /** @type {import("./cell.js").CellContext} */
    this.ctx = {
      awareness: options.awareness,
      readOnly: options.readOnly,
      me: options.me,
      keys: options.keys,
      answerInput: options.answerInput,
      help: options.help,
      onFocusEditor: (view) => this.setActive(view.id),
      onLocalChange: (view) => this.listeners.typed.forEach((f) => f(view)),
      onSelect: (view, edit) => this.select(view.id, { edit }),
      onRecreate: (view) => queueMicrotask(() => this.recreate(view)),
      onSourceChange: (view) => this.listeners.source.forEach((f) => f(view)),
    };

    /** @type {Set<CellView>} */
    this.toMount = new Set();
    this.mountScheduled = 0;
    this.mountBudget = FIRST_BUDGET_MS;
    this.near = new IntersectionObserver((entries) => this.nearChanged(entries), {
      root: this.scroller, rootMargin: MOUNT_MARGIN,
    });
    this.far = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        const view = viewOf(entry.target);
        if (view && !entry.isIntersecting) view.unmountEditor();
      }
    }, { root: this.scroller, rootMargin: UNMOUNT_MARGIN });

    this.cells.observe((event) => this.applyDelta(/** @type {any} */ (event.changes.delta), event.transaction));
    this.container.addEventListener("focusin", (event) => {
      // Going on to another cell leaves the ghost of a deleted one behind.
      const ghost = this.ghost;
      if (ghost && !ghost.el.contains(/** @type {Node} */ (event.target))) this.dropGhost(ghost, false);
      this.updateMode();
    });
    this.container.addEventListener("focusout", () => queueMicrotask(() => this.updateMode()));
    this.applyDelta([{ insert: this.cells.toArray() }], null);
  }

  /**
   * @template {keyof NotebookView["listeners"]} K
   * @param {K} name @param {NotebookView["listeners"][K][number]} fn
   */
  on(name, fn) {
    /** @type {any[]} */ (this.listeners[name]).push(fn);
  }

  // ---- following the document -------------------------------------------------------

  /**
   * Follow a change of the `cells` array. A cell deleted and inserted again in one
   * transaction (a move, or a change of type) keeps the keyboard and the caret.
   * Someone else deleting the cell we are typing in leaves a ghost there (./ghost.js).
   * @param {Array<{insert?: any[], delete?: number, retain?: number}>} delta
   * @param {import("yjs").Transaction | null} transaction
   */
  applyDelta(delta, transaction) {
    const activeIndex = this.activeId ? this.indexOf(this.activeId) : -1;
    const hadFocus = this.container.contains(document.activeElement);
    const editing = this.mode === "edit";
    const local = !transaction || transaction.local;
    /** @type {{view: import("./cell.js").CellView, index: number, before: Element | null,
     *   selection: {anchor: number, head: number} | null, typed: {text: string, clients: number[]} | null,
     *   snapshot: any} | null} */
    let left = null;
    let index = 0;
    for (const change of delta) {
      if (change.retain) index += change.retain;
      else if (change.delete) {
        const removed = this.views.splice(index, change.delete);
        for (const view of removed) {
          if (view.id === this.activeId && transaction) {
            const sel = view.editor && editing ? view.editor.state.selection.main : null;
            left = {
              view, index,
              before: view.el.nextElementSibling,
              selection: sel ? { anchor: sel.anchor, head: sel.head } : null,
              typed: editing && !local ? model.deletedText(view.ytext, transaction) : null,
              snapshot: editing && !local ? model.deletedCellSnapshot(view.ycell, transaction) : null,
            };
            // Keep the element in place until we know whether the cell comes back.
            view.el.replaceWith(this.placeholder);
          }
          this.destroyView(view);
        }
      } else if (change.insert) {
        const created = change.insert.map((ycell) => this.createView(ycell));
        const before = this.views[index]?.el ?? null;
        const fragment = document.createDocumentFragment();
        for (const view of created) fragment.append(view.el);
        this.container.insertBefore(fragment, before);
        this.views.splice(index, 0, ...created);
        index += created.length;
        for (const view of created) {
          this.near.observe(view.el);
          this.far.observe(view.el);
          this.listeners.created.forEach((f) => f(view));
        }
      }
    }
    const placeholderAt = this.placeholder.nextElementSibling;
    this.placeholder.remove();
    if (this.activeId !== null) {
      const view = this.byId(this.activeId);
      if (view) {
        view.setActive(true);
        if (left && left.view !== view) this.rebind(left, view, local, hadFocus);
        // Our own cell was moved (or retyped): keep the keyboard where it was.
        else if (hadFocus && !this.container.contains(document.activeElement)) {
          if (editing) view.focusEditor();
          else view.el.focus({ preventScroll: true });
        }
      } else if (left && left.snapshot && hadFocus) {
        this.leaveGhost(left, placeholderAt);
      } else {
        const next = this.views[Math.min(Math.max(activeIndex, 0), this.views.length - 1)];
        this.setActive(next ? next.id : null);
        if (next && hadFocus) next.el.focus({ preventScroll: true });
      }
    } else if (this.views.length) {
      this.setActive(this.views[0].id);
    }
    this.container.classList.toggle("empty", this.views.length === 0);
    this.listeners.changed.forEach((f) => f());
  }

  /**
   * The cell we were in was deleted and inserted again (moved, retyped): a new
   * view over the new Y.Map. Put the caret back; a move made by someone who had
   * not yet received our last keystrokes dropped them: type them again.
   * @param {{selection: {anchor: number, head: number} | null, typed: {text: string, clients: number[]} | null}} left
   * @param {import("./cell.js").CellView} view @param {boolean} local @param {boolean} hadFocus
   */
  rebind(left, view, local, hadFocus) {
    if (!hadFocus || this.container.contains(document.activeElement)) return;
    if (!left.selection) {
      view.el.focus({ preventScroll: true });
      return;
    }
    const selection = left.selection;
    const typed = left.typed;
    const scrollTop = this.scroller.scrollTop;
    queueMicrotask(() => {
      if (view.destroyed) return;
      let mapped = selection;
      if (!local && typed && !this.readOnly) mapped = this.retypeLost(view, typed, selection);
      view.focusAt(mapped);
      this.scroller.scrollTop = scrollTop;
      this.reveal(view);
      this.updateMode();
    });
  }

  /**
   * Type again our own characters that the old copy of the cell held and the new
   * one lacks (others' pages do the same for theirs, so nothing is doubled).
   * @param {import("./cell.js").CellView} view @param {{text: string, clients: number[]}} typed
   * @param {{anchor: number, head: number}} selection in the old text
   * @returns {{anchor: number, head: number}} the selection in the new text
   */
  retypeLost(view, typed, selection) {
    const old = typed.text;
    const now = view.ytext.toString();
    let prefix = 0;
    const max = Math.min(old.length, now.length);
    while (prefix < max && old[prefix] === now[prefix]) prefix++;
    let suffix = 0;
    while (suffix < max - prefix && old[old.length - 1 - suffix] === now[now.length - 1 - suffix]) suffix++;
    const me = this.doc.clientID;
    let lost = "";
    for (let i = prefix; i < old.length - suffix; i++) if (typed.clients[i] === me) lost += old[i];
    if (lost) this.doc.transact(() => view.ytext.insert(prefix, lost));
    const text = view.ytext.toString();
    /** @param {number} pos */
    const map = (pos) => (pos <= prefix ? pos : pos >= old.length - suffix ? text.length - (old.length - pos) : prefix + lost.length);
    return { anchor: map(selection.anchor), head: map(selection.head) };
  }

  /**
   * Someone else deleted the cell we were typing in: a ghost keeps its place and the keyboard.
   * @param {{snapshot: any, selection: {anchor: number, head: number} | null}} left
   * @param {Element | null} before
   */
  leaveGhost(left, before) {
    this.ghost?.remove();
    const ghost = new Ghost({
      snapshot: left.snapshot,
      selection: left.selection,
      awareness: this.ctx.awareness,
      onUndo: (g) => this.undoDelete(g),
      onLeave: (g) => this.dropGhost(g, true),
    });
    this.ghost = ghost;
    this.container.insertBefore(ghost.el, before && before.parentNode === this.container ? before : null);
    ghost.focus();
    this.updateMode();
  }

  /** The cells before the ghost: where its cell goes back. */
  /** @param {Ghost} ghost */
  ghostIndex(ghost) {
    let index = 0;
    for (const el of Array.from(this.container.children)) {
      if (el === ghost.el) break;
      if (viewOf(el)) index++;
    }
    return index;
  }

  /** @param {Ghost} ghost */
  undoDelete(ghost) {
    if (this.readOnly) {
      this.dropGhost(ghost, true);
      return;
    }
    const at = this.ghostIndex(ghost);
    this.dropGhost(ghost, false);
    const id = model.restoreCell(this.doc, at, ghost.snapshot);
    if (!id) return;
    const view = this.byId(id);
    if (!view) return;
    this.setActive(id);
    if (ghost.selection && !this.readOnly) view.focusAt(ghost.selection);
    else view.el.focus({ preventScroll: true });
    this.updateMode();
  }

  /** @param {Ghost} ghost @param {boolean} selectNext */
  dropGhost(ghost, selectNext) {
    if (this.ghost === ghost) this.ghost = null;
    const at = this.ghostIndex(ghost);
    const hadFocus = ghost.el.contains(document.activeElement);
    ghost.remove();
    if (!selectNext) return;
    const next = this.views[Math.min(at, this.views.length - 1)];
    this.setActive(next ? next.id : null);
    if (next && hadFocus) next.el.focus({ preventScroll: true });
    this.updateMode();
  }

  /** @param {any} ycell */
  createView(ycell) {
    return new CellView(ycell, this.ctx);
  }

  /** @param {CellView} view */
  destroyView(view) {
    this.near.unobserve(view.el);
    this.far.unobserve(view.el);
    this.toMount.delete(view);
    view.destroy();
  }

  /** A cell's Y.Map changed kind (type or source replaced in place): rebuild its view. */
  /** @param {CellView} old */
  recreate(old) {
    const index = this.views.indexOf(old);
    if (index < 0) return;
    const focused = old.el.contains(document.activeElement);
    const view = this.createView(old.ycell);
    old.el.replaceWith(view.el);
    this.views[index] = view;
    this.destroyView(old);
    this.near.observe(view.el);
    this.far.observe(view.el);
    this.listeners.created.forEach((f) => f(view));
    if (view.id === this.activeId) {
      view.setActive(true);
      if (focused) view.el.focus({ preventScroll: true });
    }
  }

  // ---- lazy editors -----------------------------------------------------------------

  /** @param {IntersectionObserverEntry[]} entries */
  nearChanged(entries) {
    for (const entry of entries) {
      const view = viewOf(entry.target);
      if (!view) continue;
      if (entry.isIntersecting) this.toMount.add(view);
      else {
        this.toMount.delete(view);
        view.visible = false;
      }
    }
    this.scheduleMounts();
  }

  scheduleMounts() {
    if (this.mountScheduled || !this.toMount.size) return;
    this.mountScheduled = requestAnimationFrame(() => {
      this.mountScheduled = 0;
      const start = performance.now();
      for (const view of this.toMount) {
        this.toMount.delete(view);
        if (!view.destroyed) view.setVisible(true);
        if (performance.now() - start > this.mountBudget) break;
      }
      if (this.toMount.size) this.scheduleMounts();
      else {
        if (this.views.length) this.mountBudget = FRAME_BUDGET_MS;
        this.container.dispatchEvent(new CustomEvent("editors-mounted"));
      }
    });
  }

  // ---- lookup -----------------------------------------------------------------------

  /** @param {string} id */
  byId(id) {
    return this.views.find((v) => v.id === id) || null;
  }

  /** @param {string} id */
  indexOf(id) {
    return this.views.findIndex((v) => v.id === id);
  }

  get active() {
    return this.activeId ? this.byId(this.activeId) : null;
  }

  /** "edit" when a cell editor has the keyboard, else "command". */
  get mode() {
    const focused = document.activeElement;
    return focused && focused.closest && focused.closest(".cm-editor, .cell-ghost") && this.container.contains(focused)
      ? "edit" : "command";
  }

  updateMode() {
    this.container.dataset.mode = this.mode;
  }

  /** The person's role changed: every cell becomes read-only or editable in place. */
  /** @param {boolean} readOnly */
  setReadOnly(readOnly) {
    if (readOnly === this.readOnly) return;
    this.readOnly = readOnly;
    this.ctx.readOnly = readOnly;
    for (const view of this.views) view.applyReadOnly();
  }

  // ---- selection --------------------------------------------------------------------

  /** @param {string | null} id */
  setActive(id) {
    if (id === this.activeId) return;
    if (this.activeId) this.byId(this.activeId)?.setActive(false);
    this.activeId = id;
    if (id) this.byId(id)?.setActive(true);
    this.listeners.active.forEach((f) => f(id));
  }

  /**
   * Select a cell; with `edit`, put the caret in its editor (`where`: start/end).
   * @param {string} id
   * @param {{edit?: boolean, where?: "start" | "end" | null, scroll?: boolean}} [options]
   */
  select(id, options = {}) {
    const view = this.byId(id);
    if (!view) return;
    this.setActive(id);
    if (options.scroll) this.reveal(view);
    if (options.edit && !this.readOnly) {
      view.focusEditor(options.where ?? null);
    } else if (!view.el.contains(document.activeElement) || view.el.querySelector(".cm-editor")?.contains(document.activeElement)) {
      view.el.focus({ preventScroll: true });
    }
    this.updateMode();
  }

  /** @param {CellView} view */
  reveal(view) {
    const top = this.offsetOf(view);
    const bottom = top + view.el.offsetHeight;
    const viewTop = this.scroller.scrollTop;
    const viewBottom = viewTop + this.scroller.clientHeight;
    if (top < viewTop) this.scroller.scrollTop = top - 8;
    else if (bottom > viewBottom) {
      this.scroller.scrollTop = Math.min(top - 8, bottom - this.scroller.clientHeight + 8);
    }
  }

  /**
   * Select a cell and bring it to the middle of the viewport (the roster's and the
   * history's "go to cell"). Cells far away have estimated heights until shown, so
   * it lands again once the ones around it are laid out.
   * @param {string} id @returns {boolean} whether the cell exists
   */
  goTo(id) {
    const center = () => {
      const view = this.byId(id);
      if (!view) return false;
      const top = this.offsetOf(view) - Math.max(8, (this.scroller.clientHeight - view.el.offsetHeight) / 2);
      this.scroller.scrollTo({ top: Math.max(0, top), behavior: "instant" });
      return true;
    };
    if (!center()) return false;
    this.select(id);
    requestAnimationFrame(() => requestAnimationFrame(center));
    return true;
  }

  /** The cell's top, in the scroller's content coordinates. */
  /** @param {CellView} view */
  offsetOf(view) {
    return this.container.offsetTop + view.el.offsetTop;
  }

  /** Scroll so that the viewport's top is `offset` px below the cell's top. */
  /** @param {string} id @param {number} [offset] */
  scrollToCell(id, offset = 0) {
    const view = this.byId(id);
    if (!view) return false;
    this.scroller.scrollTo({ top: Math.max(0, this.offsetOf(view) + offset), behavior: "instant" });
    return true;
  }

  /** The cell at the top of the viewport and how far the viewport's top is below it. */
  topCell() {
    const top = this.scroller.scrollTop - this.container.offsetTop;
    let lo = 0;
    let hi = this.views.length - 1;
    if (hi < 0) return null;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const el = this.views[mid].el;
      if (el.offsetTop + el.offsetHeight <= top) lo = mid + 1;
      else hi = mid;
    }
    const view = this.views[lo];
    return { cell: view.id, offset: Math.round(top - view.el.offsetTop) };
  }
}

/** @param {Element} el @returns {CellView | undefined} */
function viewOf(el) {
  return /** @type {any} */ (el).cellView;
}

