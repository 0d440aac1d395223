// The list of cells on the page, in the document's order, kept in step with the
// `cells` Y.Array (inserts, deletes, and moves = delete + insert of a new Y.Map
// with the same id). Owns the selection (the active cell), command/edit mode,
// scrolling to a cell, and lazy editors: cells get their CodeMirror editor when
// they come near the viewport (IntersectionObserver) and give it back when far,
// so a 1,000-cell notebook renders at once and stays light.
//
// Exports: class NotebookView.
import { CellView } from "./cell.js";
import { cellsOf } from "./model.js";

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
 * }} ViewOptions
 */

export class NotebookView {
  /** @param {ViewOptions} options */
  constructor(options) {
    this.doc = options.doc;
    this.container = options.container;
    this.scroller = options.scroller;
    this.readOnly = options.readOnly;
    this.cells = cellsOf(this.doc);
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

    this.cells.observe((event) => this.applyDelta(event.changes.delta));
    this.container.addEventListener("focusin", () => this.updateMode());
    this.container.addEventListener("focusout", () => queueMicrotask(() => this.updateMode()));
    this.applyDelta([{ insert: this.cells.toArray() }]);
  }

  /**
   * @template {keyof NotebookView["listeners"]} K
   * @param {K} name @param {NotebookView["listeners"][K][number]} fn
   */
  on(name, fn) {
    /** @type {any[]} */ (this.listeners[name]).push(fn);
  }

  // ---- following the document -------------------------------------------------------

  /** @param {Array<{insert?: any[], delete?: number, retain?: number}>} delta */
  applyDelta(delta) {
    const activeIndex = this.activeId ? this.indexOf(this.activeId) : -1;
    const hadFocus = this.container.contains(document.activeElement);
    const editing = this.mode === "edit";
    let index = 0;
    for (const change of delta) {
      if (change.retain) index += change.retain;
      else if (change.delete) {
        for (const view of this.views.splice(index, change.delete)) this.destroyView(view);
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
    if (this.activeId !== null) {
      const view = this.byId(this.activeId);
      if (view) {
        view.setActive(true);
        // Our own cell was moved (or retyped): keep the keyboard where it was.
        if (hadFocus && !this.container.contains(document.activeElement)) {
          if (editing) view.focusEditor();
          else view.el.focus({ preventScroll: true });
        }
      } else {
        const next = this.views[Math.min(Math.max(activeIndex, 0), this.views.length - 1)];
        this.setActive(next ? next.id : null);
        if (next && hadFocus) next.el.focus({ preventScroll: true });
      }
    } else if (this.views.length && !this.readOnly) {
      this.setActive(this.views[0].id);
    } else if (this.views.length) {
      this.setActive(this.views[0].id);
    }
    this.container.classList.toggle("empty", this.views.length === 0);
    this.listeners.changed.forEach((f) => f());
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
    return focused && focused.closest && focused.closest(".cm-editor") && this.container.contains(focused)
      ? "edit" : "command";
  }

  updateMode() {
    this.container.dataset.mode = this.mode;
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

