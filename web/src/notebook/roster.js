// The roster, Jitsi-style: everyone in the notebook with an avatar (initials in
// their colour), name, role, the cell they are on (click to go there), what they
// are doing (typing / running), a "watching" badge for viewers, and raised hands
// (from the document's server-written `hands` map). Clicking a person follows
// them. Also the raise-hand form and the join / leave notices.
//
// Exports: class Roster ({root, doc, presence, view, follow, api, notebookId,
//   me, role, tutor, notice}).
import { h } from "../lib/dom.js";
import { icon } from "./icons.js";

/** @typedef {import("./presence.js").Person} Person */

export class Roster {
  /**
   * @param {{root: HTMLElement, doc: import("yjs").Doc, presence: import("./presence.js").Presence,
   *   view: import("./view.js").NotebookView, follow: import("./follow.js").Follow,
   *   api: typeof import("../lib/api.js").api, notebookId: string, me: string, role: string,
   *   tutor: boolean, notice: (text: string, testid?: string) => void}} options
   */
  constructor(options) {
    this.options = options;
    this.hands = options.doc.getMap("hands");
    /** @type {Set<string> | null} */
    this.known = null;
    this.noticesOn = false;
    /** @type {Map<string, PersonItem>} */
    this.items = new Map();
    this.awayKey = "";
    this.cellsKey = "";
    this.cellsViews = -1;
    /** @type {Set<string>} */
    this.seenHands = new Set(Array.from(this.hands.keys()));

    this.list = h("ul", { class: "people" });
    this.away = h("div", { class: "away-hands" });
    this.count = h("span", { class: "people-count" });
    this.message = /** @type {HTMLInputElement} */ (h("input", {
      type: "text", testid: "hand-message", placeholder: "What do you need? (optional)",
      maxlength: "500", "aria-label": "Message with your raised hand",
    }));
    this.form = h("form", { class: "hand-form", hidden: true },
      this.message,
      h("div", { class: "hand-form-buttons" },
        h("button", { type: "submit", class: "btn btn-primary", testid: "hand-send" }, "Raise hand"),
        h("button", { type: "button", class: "btn btn-quiet", onclick: () => this.closeForm() }, "Cancel")));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.raise();
    });
    this.form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.closeForm();
    });
    this.raiseButton = h("button", {
      class: "btn", testid: "raise-hand", type: "button", title: "Raise your hand",
      onclick: () => this.openForm(),
    }, icon("hand"), "Raise hand");
    options.root.replaceChildren(
      h("section", { class: "roster", testid: "roster", "aria-label": "People in this notebook" },
        h("header", { class: "roster-head" }, h("h2", null, "People ", this.count), this.raiseButton),
        this.form,
        this.list,
        this.away),
    );
    options.presence.on(() => this.render());
    this.hands.observe(() => {
      this.handsChanged();
      this.render();
    });
    options.view.on("changed", () => this.render());
    this.render();
  }

  /** Start announcing joins and leaves (after the first sync settled). */
  /** @param {boolean} on */
  setNotices(on) {
    this.noticesOn = on;
    this.known = null;
    this.render();
  }

  openForm() {
    this.form.hidden = false;
    this.message.focus();
  }

  closeForm() {
    this.form.hidden = true;
    this.message.value = "";
  }

  async raise() {
    const { api, notebookId, notice } = this.options;
    try {
      await api.post(`/api/notebooks/${notebookId}/hand`, { message: this.message.value.trim() });
      this.closeForm();
    } catch (error) {
      notice(`Could not raise your hand: ${/** @type {Error} */ (error).message}`, "error");
    }
  }

  /** @param {string} username */
  async lower(username) {
    const { api, notebookId, notice } = this.options;
    try {
      await api.del(`/api/notebooks/${notebookId}/hand/${encodeURIComponent(username)}`);
    } catch (error) {
      notice(`Could not lower the hand: ${/** @type {Error} */ (error).message}`, "error");
    }
  }

  /** @param {string} username */
  mayLower(username) {
    const { me, role, tutor } = this.options;
    return username === me || role === "editor" || role === "owner" || tutor;
  }

  handsChanged() {
    for (const username of this.hands.keys()) {
      if (this.noticesOn && !this.seenHands.has(username) && username !== this.options.me) {
        const hand = /** @type {any} */ (this.hands.get(username)) || {};
        this.options.notice(`${username} raised a hand${hand.message ? `: ${hand.message}` : ""}`, "hand-notice");
      }
    }
    this.seenHands = new Set(Array.from(this.hands.keys()));
  }

  render() {
    const { presence, view, follow } = this.options;
    const people = presence.people();
    this.announce(people);
    /** @type {Record<string, any>} */
    const hands = this.hands.toJSON();
    const ordered = Array.from(people.values()).sort((a, b) =>
      Number(b.me) - Number(a.me) || a.name.localeCompare(b.name));
    this.updateCells(ordered);
    this.count.textContent = `(${ordered.length})`;
    this.raiseButton.dataset.raised = String(this.options.me in hands);
    // Items are updated in place, never rebuilt while someone may be clicking them.
    let previous = null;
    for (const p of ordered) {
      let item = this.items.get(p.username);
      if (!item) {
        item = new PersonItem(p, this);
        this.items.set(p.username, item);
      }
      item.update(p, hands[p.username], view.indexOf(p.cell || ""), follow.following === p.username);
      const expected = previous ? previous.nextSibling : this.list.firstChild;
      if (expected !== item.el) this.list.insertBefore(item.el, expected);
      previous = item.el;
    }
    for (const [username, item] of this.items) {
      if (!people.has(username)) {
        item.el.remove();
        this.items.delete(username);
      }
    }
    const away = Object.keys(hands).filter((u) => !people.has(u)).sort();
    const awayKey = JSON.stringify(away.map((u) => [u, hands[u]]));
    if (awayKey !== this.awayKey) {
      this.awayKey = awayKey;
      this.away.replaceChildren(
        ...(away.length ? [h("h3", null, "Raised hands (not here now)")] : []),
        ...away.map((username) => h("div", { class: "away-hand", dataset: { username } },
          h("span", { class: "name" }, username), this.handBadge(username, hands[username]))),
      );
    }
  }

  /** @param {string} username @param {any} hand */
  handBadge(username, hand) {
    return h("div", { class: "hand-row" },
      h("span", { class: "hand", testid: "hand", dataset: { username } },
        icon("hand"), hand && hand.message ? String(hand.message) : "hand raised"),
      this.mayLower(username)
        ? h("button", {
            type: "button", class: "btn btn-quiet btn-small", testid: "lower-hand",
            dataset: { username },
            onclick: (/** @type {Event} */ event) => {
              event.stopPropagation();
              this.lower(username);
            },
          }, "Lower")
        : null);
  }

  /** Other people's avatars on the cells they are on. */
  /** @param {Person[]} people */
  updateCells(people) {
    /** @type {Map<string, Person[]>} */
    const byCell = new Map();
    for (const p of people) {
      if (p.me || !p.cell) continue;
      if (!byCell.has(p.cell)) byCell.set(p.cell, []);
      /** @type {Person[]} */ (byCell.get(p.cell)).push(p);
    }
    const key = JSON.stringify(Array.from(byCell, ([c, ps]) => [c, ps.map((p) => p.username)]));
    if (key === this.cellsKey && this.cellsViews === this.options.view.views.length) return;
    this.cellsKey = key;
    this.cellsViews = this.options.view.views.length;
    for (const view of this.options.view.views) {
      const here = byCell.get(view.id);
      if (here || view.el.classList.contains("has-peers")) view.setPeople(here || []);
    }
  }

  /** Join / leave notices. */
  /** @param {Map<string, Person>} people */
  announce(people) {
    const names = new Set(Array.from(people.values()).filter((p) => !p.me).map((p) => p.username));
    if (this.noticesOn && this.known) {
      for (const name of names) if (!this.known.has(name)) this.options.notice(`${name} joined`);
      for (const name of this.known) if (!names.has(name)) this.options.notice(`${name} left`);
    }
    this.known = names;
  }
}

/** One person in the roster; its element lives as long as they are here. */
class PersonItem {
  /** @param {Person} p @param {Roster} roster */
  constructor(p, roster) {
    const { view, follow } = roster.options;
    this.roster = roster;
    this.username = p.username;
    this.key = { cell: "", hand: "", head: "" };
    this.dot = h("span", { class: "activity-dot" });
    this.avatar = h("span", { class: "avatar" });
    this.head = h("div", { class: "person-line" });
    this.where = h("span", { class: "person-where" });
    this.activity = h("span", { class: "person-activity", testid: "person-activity" });
    this.hand = h("div", { class: "person-hand" });
    const follows = () => {
      if (!p.me) follow.start(p.username);
    };
    this.el = h("li", {
      class: "person", testid: "person",
      dataset: { username: p.username, me: p.me ? "true" : null },
      tabindex: p.me ? null : "0", role: p.me ? null : "button",
      onclick: follows,
      onkeydown: (/** @type {KeyboardEvent} */ event) => {
        if ((event.key === "Enter" || event.key === " ") && event.target === this.el) {
          event.preventDefault();
          event.stopPropagation();
          follows();
        }
      },
    },
    this.avatar,
    h("div", { class: "person-main" },
      this.head,
      h("div", { class: "person-line small" }, this.where, this.activity),
      this.hand));
    this.view = view;
  }

  /**
   * @param {Person} p @param {any} hand @param {number} index position of their cell
   * @param {boolean} following
   */
  update(p, hand, index, following) {
    const el = this.el;
    el.dataset.role = p.role;
    el.title = p.me ? "You" : `Follow ${p.name}`;
    el.style.setProperty("--person-color", p.color);
    if (following) el.dataset.following = "true";
    else delete el.dataset.following;

    const head = JSON.stringify([p.name, p.initials, p.color, p.role, p.me]);
    if (head !== this.key.head) {
      this.key.head = head;
      this.avatar.style.background = p.color;
      this.avatar.replaceChildren(p.initials, this.dot);
      this.head.replaceChildren(
        h("span", { class: "name" }, p.name, p.me ? h("span", { class: "you" }, " (you)") : null),
        p.role === "viewer"
          ? h("span", { class: "badge watching", testid: "watching", title: "Viewer: can watch, not edit" }, "watching")
          : h("span", { class: "badge role" }, p.role));
    }
    this.dot.className = `activity-dot ${p.activity}`;
    this.dot.hidden = !p.activity;
    if (this.activity.textContent !== p.activity) this.activity.textContent = p.activity;
    this.activity.className = `person-activity ${p.activity}`;

    const cellKey = `${p.cell}:${index}`;
    if (cellKey !== this.key.cell) {
      this.key.cell = cellKey;
      const cellId = p.cell || "";
      this.where.replaceChildren(index >= 0
        ? h("button", {
            type: "button", class: "person-cell link", testid: "person-cell",
            dataset: { cellId }, title: "Go to this cell",
            onclick: (/** @type {Event} */ event) => {
              event.stopPropagation();
              this.view.goTo(cellId);
            },
          }, `cell ${index + 1}`)
        : h("span", { class: "person-cell", testid: "person-cell", dataset: { cellId } }, ""));
    }

    const handKey = hand ? JSON.stringify(hand) : "";
    if (handKey !== this.key.hand) {
      this.key.hand = handKey;
      this.hand.replaceChildren(hand ? this.roster.handBadge(p.username, hand) : "");
    }
  }
}
