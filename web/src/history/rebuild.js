// @ts-check
// "Rebuild as notebook": a form in the panel asking where to put a new
// notebook made of the selected runs (oldest first); on success it says what
// was made and links to it.
import { h, fill, errorText } from "../list/dom.js";
import { isOlder } from "./store.js";

/**
 * @typedef {import("./store.js").HistoryState} HistoryState
 * @typedef {import("./store.js").Api} Api
 */

/**
 * @param {{state: HistoryState, client: Api, base: string, me: string, notebookPath: string | undefined,
 *   box: HTMLElement, opener: HTMLElement, render: () => void}} options
 *   `box` holds the form; `opener` (the button that opens it) gets the focus back on close.
 * @returns {{open: () => void, close: () => void}}
 */
export function rebuildForm({ state, client, base, me, notebookPath, box, opener, render }) {
  function close() {
    box.hidden = true;
    fill(box);
    opener.focus();
  }

  /**
   * Say what was made, with a link to it.
   * @param {number} count runs in it
   * @param {{path: string, id: string}} entry the new notebook
   */
  function done(count, entry) {
    fill(
      box,
      h(
        "p",
        { class: "hist-done", testid: "history-rebuild-result", role: "status" },
        `Created ${entry.path} from ${count} run${count > 1 ? "s" : ""}. `,
        h("a", { href: `/notebooks/${entry.id}`, target: "_blank", rel: "noopener", testid: "history-rebuild-open" }, "Open it"),
        " ",
        h("button", { type: "button", class: "btn btn-quiet", onclick: () => close() }, "Close"),
      ),
    );
  }

  function open() {
    if (!state.selected.size) return;
    const stem = (notebookPath || "notebook.ipynb").split("/").pop()?.replace(/\.ipynb$/i, "") || "notebook";
    const path = h("input", {
      type: "text",
      testid: "history-rebuild-path",
      value: `${me}/${stem}-rebuilt.ipynb`,
      "aria-label": "Path of the new notebook (in your folder)",
      spellcheck: "false",
    });
    const error = h("p", { class: "hist-message", role: "alert", hidden: true });
    const go = h("button", { type: "submit", class: "btn btn-primary", testid: "history-rebuild-confirm" }, "Create");
    const form = h(
      "form",
      {
        onsubmit: async (/** @type {SubmitEvent} */ event) => {
          event.preventDefault();
          let target = path.value.trim().replace(/^\/+/, "");
          if (!target.toLowerCase().endsWith(".ipynb")) target += ".ipynb";
          // Oldest first: the new notebook runs top to bottom in the order things ran.
          const ids = state.rows.filter((r) => state.selected.has(r.id)).sort((a, b) => (isOlder(a, b) ? -1 : 1)).map((r) => r.id);
          if (!ids.length) {
            error.hidden = false;
            error.textContent = "Select at least one run first.";
            return;
          }
          go.disabled = true;
          try {
            const entry = /** @type {{path: string, id: string}} */ (await client.post(`${base}/rebuild`, { execution_ids: ids, path: target }));
            state.selected.clear();
            render();
            done(ids.length, entry);
          } catch (e) {
            error.hidden = false;
            error.textContent = errorText(e);
            go.disabled = false;
          }
        },
      },
      h("p", { class: "small", dataset: { role: "rebuild-count" } }),
      h("div", { class: "hist-rebuild-row" }, path, go, h("button", { type: "button", class: "btn btn-quiet", onclick: () => close() }, "Cancel")),
      error,
    );
    fill(box, form);
    box.hidden = false;
    render();
    path.focus();
    path.setSelectionRange(me.length + 1, path.value.length - ".ipynb".length);
  }

  return { open, close };
}
