// @ts-check
// Follow mode: keep our viewport on someone else's (their `scroll`, else their
// `cell`), with a banner saying whom we follow. Any action of our own (a key, the
// wheel, a click or touch outside the banner) leaves it. `?follow=<username>` in
// the page URL starts it (the tutor dashboard opens notebooks that way), waiting
// for that person if they are not here yet.
//
// Exports: class Follow ({banner, presence, view, me, notice}); start(username),
// stop(reason?), `following` (username or null).
import { h } from "../lib/dom.js";

export class Follow {
  /**
   * @param {{banner: HTMLElement, presence: import("./presence.js").Presence,
   *   view: import("./view.js").NotebookView, me: string,
   *   notice: (text: string, testid?: string) => void}} options
   */
  constructor(options) {
    this.options = options;
    /** @type {string | null} */
    this.following = null;
    this.seen = false;
    this.lastApplied = "";
    this.label = h("span", { class: "following-label" });
    this.banner = options.banner;
    this.banner.replaceChildren(
      h("div", { class: "following", testid: "following", hidden: true, role: "status" },
        h("span", { class: "following-dot" }),
        this.label,
        h("button", {
          type: "button", class: "btn btn-small", testid: "stop-following",
          onclick: () => this.stop(),
        }, "Stop following")),
    );
    this.box = /** @type {HTMLElement} */ (this.banner.firstElementChild);
    options.presence.on(() => this.apply());
    options.view.on("changed", () => this.apply());

    const leave = (/** @type {Event} */ event) => {
      if (!this.following) return;
      const target = /** @type {Element | null} */ (event.target instanceof Element ? event.target : null);
      if (target && this.box.contains(target)) return;
      if (event instanceof KeyboardEvent && ["Shift", "Control", "Alt", "Meta", "CapsLock"].includes(event.key)) return;
      this.stop();
    };
    for (const type of ["wheel", "keydown", "pointerdown", "touchstart"]) {
      window.addEventListener(type, leave, { capture: true, passive: true });
    }
  }

  /** @param {string} username */
  start(username) {
    if (!username || username === this.options.me) return;
    this.following = username;
    this.seen = false;
    this.lastApplied = "";
    this.box.hidden = false;
    this.box.dataset.username = username;
    this.apply();
  }

  /** @param {string} [reason] told to the person in a notice */
  stop(reason) {
    if (!this.following) return;
    this.following = null;
    this.box.hidden = true;
    delete this.box.dataset.username;
    if (reason) this.options.notice(reason);
    this.options.presence.changed();
  }

  apply() {
    const username = this.following;
    if (!username) return;
    const person = this.options.presence.person(username);
    const name = person ? person.name : username;
    if (!person) {
      if (this.seen) {
        this.stop(`${name} left; you are no longer following them.`);
        return;
      }
      this.label.textContent = `Following ${name}: waiting for them to open this notebook`;
      return;
    }
    this.seen = true;
    // Our presence says we are where they are (the roster shows us on their cell).
    if (person.cell && this.options.view.byId(person.cell)) this.options.view.setActive(person.cell);
    const where = person.scroll ? `${person.scroll.cell}:${person.scroll.offset}` : `cell:${person.cell}`;
    const view = this.options.view;
    const cellIndex = person.cell ? view.indexOf(person.cell) : -1;
    this.label.textContent = `Following ${name}${cellIndex >= 0 ? ` (cell ${cellIndex + 1})` : ""}`;
    if (where === this.lastApplied) return;
    if (this.go(person)) {
      this.lastApplied = where;
      // Cells far away are laid out with estimated heights until shown: once
      // the ones we scrolled to have their real size, land there again.
      requestAnimationFrame(() => requestAnimationFrame(() => {
        if (this.following === username && this.lastApplied === where) this.go(person);
      }));
    }
  }

  /** @param {import("./presence.js").Person} person @returns {boolean} */
  go(person) {
    const view = this.options.view;
    if (person.scroll && view.scrollToCell(person.scroll.cell, person.scroll.offset)) return true;
    const target = person.cell ? view.byId(person.cell) : null;
    if (target) view.reveal(target);
    return Boolean(target);
  }
}
