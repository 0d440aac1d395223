// @ts-check
// Text the server did not take. When a change of ours is refused (our role was
// lowered while we typed) or our copy cannot be merged (4409), the page reloads
// the document from the server; before that, every cell whose text here differs
// from the server's is kept in sessionStorage, and after the reload it is shown
// in a panel with a Copy button, so nothing typed is silently lost and nothing
// refused looks saved.
//
// Exports:
//   keepUnsaved(doc, notebookId, reason)  compare with GET /api/notebooks/<id>, store
//     the differing cells; resolves with how many were kept (rejects if the server
//     cannot be asked).
//   showKept(notebookId, root)  the panel [data-testid=kept-text], if anything was kept.
import { api } from "../lib/api.js";
import { h } from "../lib/dom.js";
import { cellsOf, cellId } from "./model.js";

/** @param {string} notebookId */
const key = (notebookId) => `collab-server:kept:${notebookId}`;

/** @param {unknown} source */
const text = (source) => (Array.isArray(source) ? source.join("") : String(source ?? ""));

/**
 * @param {import("yjs").Doc} doc @param {string} notebookId @param {string} reason
 * @returns {Promise<number>}
 */
export async function keepUnsaved(doc, notebookId, reason) {
  const server = /** @type {{cells?: {id: unknown, source: unknown}[]} | null} */ (
    await api.get(`/api/notebooks/${notebookId}`)
  );
  /** @type {Map<string, string>} */
  const theirs = new Map();
  for (const c of (server && server.cells) || []) theirs.set(String(c.id), text(c.source));
  const cells = [];
  let index = 0;
  for (const ycell of cellsOf(doc)) {
    index++;
    const id = cellId(ycell);
    const mine = String(ycell.get("source") ?? "");
    if (mine && theirs.get(id) !== mine) cells.push({ id, index, text: mine, server: theirs.get(id) ?? null });
  }
  if (!cells.length) return 0;
  /** @type {any[]} */
  let earlier = [];
  try {
    earlier = JSON.parse(sessionStorage.getItem(key(notebookId)) || "{}").cells || [];
  } catch {
    earlier = [];
  }
  sessionStorage.setItem(key(notebookId), JSON.stringify({ reason, at: Date.now(), cells: [...earlier, ...cells] }));
  return cells.length;
}

/** @param {string} notebookId @param {HTMLElement} root */
export function showKept(notebookId, root) {
  /** @type {{reason: string, cells: Array<{id: string, index: number, text: string}>} | null} */
  let kept = null;
  try {
    kept = JSON.parse(sessionStorage.getItem(key(notebookId)) || "null");
  } catch {
    kept = null;
  }
  if (!kept || !Array.isArray(kept.cells) || !kept.cells.length) return;
  const all = kept.cells.map((c) => c.text).join("\n\n");
  const area = /** @type {HTMLTextAreaElement} */ (h("textarea", {
    class: "kept-text", testid: "kept-text-value", readonly: true, rows: String(Math.min(12, all.split("\n").length + 1)),
    "aria-label": "Your text that was not saved",
  }));
  area.value = all;
  const copy = h("button", { type: "button", class: "btn btn-primary", testid: "kept-copy" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(all);
    } catch {
      area.select();
      document.execCommand("copy");
    }
    copy.textContent = "Copied";
  });
  const panel = h("div", { class: "kept", testid: "kept-text", role: "alert" },
    h("p", null,
      h("strong", null, "Your last changes were not saved. "),
      `The server refused them (${kept.reason}), so the notebook was reloaded from the server. ` +
      `Here is your text (cell${kept.cells.length > 1 ? "s" : ""} ${kept.cells.map((c) => c.index).join(", ")}):`),
    area,
    h("div", { class: "kept-buttons" },
      copy,
      h("button", {
        type: "button", class: "btn", testid: "kept-dismiss",
        onclick: () => {
          sessionStorage.removeItem(key(notebookId));
          panel.remove();
        },
      }, "Dismiss")));
  root.replaceChildren(panel);
}
