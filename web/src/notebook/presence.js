// @ts-check
// Who is here and what they are doing, from Yjs awareness.
//
// Our own state carries `cell` (the active cell id), `activity` ("typing" while
// we typed in the last 2 s, "running" while a cell we asked for is queued or
// running, else "") and `scroll` ({cell, offset}: the cell at the top of our
// viewport and how far below its top the viewport starts). We never set `user`:
// the server stamps every state with the identity it authenticated
// ({username, name, initials, color, role}) and does not echo ours back, so our
// own entry is built from the page's boot identity.
//
// `cursor` is y-codemirror.next's (our caret in the cell we type in); it never
// clears it, so when we leave edit mode we set it to null ourselves: others stop
// drawing our caret in a cell we left. `action` ({kind: "delete", ids, at}) is set
// just before we delete cells, so that others' pages can say who did it.
//
// Exports: class Presence; `people()` is a Map username -> Person (several
// tabs of one person are merged: the most recently updated one says where they
// are). Listen with `on(fn)`; fn is called (at most once a frame) on any change.

const TYPING_MS = 2000;

/**
 * @typedef {{username: string, name: string, initials: string, color: string, role: string,
 *   cell: string | null, activity: "" | "typing" | "running",
 *   scroll: {cell: string, offset: number} | null, me: boolean, clients: number[]}} Person
 */

export class Presence {
  /**
   * @param {{awareness: any, view: import("./view.js").NotebookView,
   *   identity: {username: string, name: string, initials: string, color: string},
   *   role: string}} options
   */
  constructor(options) {
    this.awareness = options.awareness;
    this.view = options.view;
    this.identity = options.identity;
    this.role = options.role;
    /** @type {Array<() => void>} */
    this.listeners = [];
    this.typingUntil = 0;
    this.typingTimer = 0;
    this.running = false;
    this.scheduled = 0;
    /** @type {Map<string, Person>} */
    this.cache = new Map();
    this.dirty = true;

    this.awareness.on("change", () => this.changed());
    this.view.on("active", (id) => this.set("cell", id));
    this.view.on("typed", () => this.typed());
    this.view.on("changed", () => this.changed());
    let scrollTimer = 0;
    this.view.scroller.addEventListener("scroll", () => {
      if (scrollTimer) return;
      scrollTimer = window.setTimeout(() => {
        scrollTimer = 0;
        this.set("scroll", this.view.topCell());
      }, 120);
    }, { passive: true });
    this.view.container.addEventListener("focusout", () => queueMicrotask(() => {
      if (this.view.mode !== "edit") this.set("cursor", null);
    }));
    this.set("cell", this.view.activeId);
    this.set("activity", "");
  }

  /** Our role changed (the server's role message). */
  /** @param {string} role */
  setRole(role) {
    this.role = role;
    this.changed();
  }

  /** @param {string} key @param {unknown} value */
  set(key, value) {
    const state = this.awareness.getLocalState() || {};
    if (JSON.stringify(state[key] ?? null) === JSON.stringify(value ?? null)) return;
    this.awareness.setLocalStateField(key, value ?? null);
  }

  updateScroll() {
    this.set("scroll", this.view.topCell());
  }

  typed() {
    this.typingUntil = Date.now() + TYPING_MS;
    this.updateActivity();
    clearTimeout(this.typingTimer);
    this.typingTimer = window.setTimeout(() => this.updateActivity(), TYPING_MS + 50);
  }

  /** @param {boolean} running whether a cell we asked for is queued or running */
  setRunning(running) {
    this.running = running;
    this.updateActivity();
  }

  updateActivity() {
    const activity = Date.now() < this.typingUntil ? "typing" : this.running ? "running" : "";
    this.set("activity", activity);
  }

  /** @param {() => void} fn */
  on(fn) {
    this.listeners.push(fn);
  }

  changed() {
    this.dirty = true;
    if (this.scheduled) return;
    this.scheduled = requestAnimationFrame(() => {
      this.scheduled = 0;
      this.listeners.forEach((f) => f());
    });
  }

  /** @returns {Map<string, Person>} */
  people() {
    if (!this.dirty) return this.cache;
    this.dirty = false;
    /** @type {Map<string, Person & {updated: number}>} */
    const people = new Map();
    const myId = this.awareness.clientID;
    this.awareness.getStates().forEach((/** @type {any} */ state, /** @type {number} */ clientId) => {
      const user = clientId === myId ? { ...this.identity, role: this.role } : state && state.user;
      if (!user || typeof user.username !== "string") return;
      const updated = this.awareness.meta.get(clientId)?.lastUpdated ?? 0;
      let person = people.get(user.username);
      if (!person) {
        person = {
          username: user.username,
          name: String(user.display_name || user.name || user.username),
          initials: String(user.initials || user.username.slice(0, 1).toUpperCase()),
          color: String(user.color || "#888"),
          role: String(user.role || ""),
          cell: null, activity: "", scroll: null,
          me: user.username === this.identity.username,
          clients: [], updated: -1,
        };
        people.set(user.username, person);
      }
      person.clients.push(clientId);
      const activity = state.activity === "typing" || state.activity === "running" ? state.activity : "";
      if (activity === "typing" || (activity === "running" && person.activity !== "typing")) person.activity = activity;
      if (updated > person.updated && typeof state.cell === "string") {
        person.updated = updated;
        person.cell = state.cell;
        person.scroll = state.scroll && typeof state.scroll.cell === "string"
          ? { cell: state.scroll.cell, offset: Number(state.scroll.offset) || 0 } : null;
      }
    });
    this.cache = /** @type {Map<string, Person>} */ (/** @type {unknown} */ (people));
    return this.cache;
  }

  /** @param {string} username */
  person(username) {
    return this.people().get(username) || null;
  }
}
