// @ts-check
// The place of a cell someone else deleted while we were typing in it: a
// placeholder that keeps the keyboard (keys typed there go nowhere, rather than
// becoming command-mode shortcuts on the next cell), says who deleted the cell
// and offers Undo, which puts the cell back with its id and content.
//
// Who deleted it comes from their awareness state: the deleting page sets
// `action: {kind: "delete", ids, at}` just before deleting (see ./presence.js).
// That state may reach us after the deletion; the message is updated when it does.
//
// Exports: class Ghost ({at, snapshot, selection, awareness, onUndo, onLeave});
//   its `el` goes where the cell was; `focus()`, `remove()`.
import { h } from "../lib/dom.js";

/**
 * The name of whoever most recently said they were deleting cell `id`, or null.
 * @param {any} awareness @param {string} id @returns {string | null}
 */
export function deleterOf(awareness, id) {
  let best = null;
  let at = -Infinity;
  awareness.getStates().forEach((/** @type {any} */ state, /** @type {number} */ client) => {
    const action = state && state.action;
    if (client === awareness.clientID || !action || action.kind !== "delete") return;
    if (!Array.isArray(action.ids) || !action.ids.includes(id)) return;
    const when = Number(action.at) || 0;
    if (when > at) {
      at = when;
      const user = state.user || {};
      best = String(user.display_name || user.name || user.username || "Someone");
    }
  });
  return best;
}

export class Ghost {
  /**
   * @param {{snapshot: any, selection: {anchor: number, head: number} | null, awareness: any,
   *   onUndo: (ghost: Ghost) => void, onLeave: (ghost: Ghost) => void}} options
   */
  constructor(options) {
    this.options = options;
    this.id = String(options.snapshot.id);
    this.snapshot = options.snapshot;
    this.selection = options.selection;
    this.removed = false;
    this.message = h("span", { class: "ghost-message", testid: "ghost-message" });
    this.input = h("div", {
      class: "ghost-input", tabindex: "0", role: "textbox", "aria-readonly": "true",
      "aria-label": "Deleted cell (typing here changes nothing)",
    }, this.snapshot.source || "\u200b");
    this.el = h("div", {
      class: "cell cell-ghost", testid: "ghost-cell", role: "status",
      dataset: { cellId: this.id },
    },
    h("div", { class: "ghost-bar" },
      this.message,
      h("button", {
        type: "button", class: "btn btn-small", testid: "ghost-undo",
        onclick: () => this.options.onUndo(this),
      }, "Undo"),
      h("span", { class: "ghost-hint" }, "Esc to go on")),
    this.input);
    this.el.addEventListener("keydown", (event) => this.keydown(event));
    this.onAwareness = () => this.name();
    options.awareness.on("change", this.onAwareness);
    this.name();
  }

  name() {
    const who = deleterOf(this.options.awareness, this.id);
    this.message.textContent = `${who || "Someone"} deleted this cell`;
    if (who) this.options.awareness.off("change", this.onAwareness);
  }

  focus() {
    this.input.focus({ preventScroll: true });
  }

  /** Keys typed here change nothing; Esc leaves, Ctrl/Cmd+Z undoes the deletion. */
  /** @param {KeyboardEvent} event */
  keydown(event) {
    const target = /** @type {HTMLElement} */ (event.target);
    if (target.closest("button") && (event.key === "Enter" || event.key === " " || event.key === "Tab")) return;
    if (event.key === "Tab") return;
    event.stopPropagation();
    event.preventDefault();
    if (event.key === "Escape") this.options.onLeave(this);
    else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") this.options.onUndo(this);
  }

  remove() {
    if (this.removed) return;
    this.removed = true;
    this.options.awareness.off("change", this.onAwareness);
    this.el.remove();
  }
}
