// @ts-check
// The Trash panel of the list page: what you deleted, kept for the server's
// `trash_days`, with Restore (back where it was, shared as it was) and Delete
// for good. Collapsed unless it holds something you just deleted.
//
// Exports: createTrash({say, restored}) -> {el, refresh(), days()}.
import { h, fill, errorText } from "./dom.js";
import { api } from "../lib/api.js";
import { icon } from "./icons.js";
import { confirmDialog } from "./dialogs.js";
import { timeElement } from "./time.js";

/**
 * @typedef {{id: string, path: string, name: string, kind: string, deleted_at: number,
 *   deleted_by: string, purge_at: number}} TrashedItem
 * @typedef {{days: number, items: TrashedItem[]}} TrashListing
 */

/**
 * @param {{say: import("./flash.js").Say, restored: () => Promise<void>}} options
 */
export function createTrash({ say, restored }) {
  let days = 30;
  const count = h("span", { class: "count", testid: "trash-count" });
  const note = h("p", { class: "muted trash-note", testid: "trash-note" });
  const body = h("div", { class: "listing", testid: "trash" });
  const details = h("details", { class: "trash" },
    h("summary", { class: "panel-title" }, icon("trash"), "Trash ", count),
    note,
    body);
  const el = h("section", { class: "panel", "aria-label": "Trash", testid: "trash-panel" }, details);

  async function refresh() {
    /** @type {TrashListing} */
    let listing;
    try {
      listing = /** @type {TrashListing} */ (await api.get("/api/trash"));
    } catch (e) {
      fill(body, h("p", { class: "alert" }, `The trash cannot be shown: ${errorText(e)}`));
      return;
    }
    days = listing.days;
    count.textContent = listing.items.length ? `(${listing.items.length})` : "";
    note.textContent = listing.items.length
      ? `Deleted items are kept ${days} days, then deleted for good.`
      : "The trash is empty.";
    fill(body, listing.items.length ? h("ul", { class: "trash-items" }, listing.items.map(row)) : null);
  }

  /** @param {TrashedItem} item */
  function row(item) {
    const where = item.path.split("/").slice(0, -1).join("/");
    return h("li", { class: "trash-item", testid: "trash-item", dataset: { path: item.path } },
      h("span", { class: "trash-name" }, icon(item.kind === "directory" ? "folder" : item.kind === "notebook" ? "notebook" : "file"),
        h("span", { testid: "trash-name" }, item.name)),
      h("span", { class: "muted" }, `from ${where || "the top"}, deleted by ${item.deleted_by} `, timeElement(item.deleted_at)),
      h("span", { class: "trash-actions" },
        h("button", { type: "button", class: "btn", testid: "restore", "aria-label": `Restore ${item.name}`, onclick: () => restore(item) }, "Restore"),
        h("button", { type: "button", class: "btn btn-danger", testid: "delete-for-good", "aria-label": `Delete ${item.name} for good`, onclick: () => purge(item) }, "Delete for good")));
  }

  /** @param {TrashedItem} item */
  async function restore(item) {
    try {
      await api.post(`/api/trash/${item.id}/restore`);
      say(`Restored ${item.name} to ${item.path}.`);
    } catch (e) {
      say(`${item.name} could not be restored: ${errorText(e)}`, "error");
    }
    await Promise.all([refresh(), restored()]);
  }

  /** @param {TrashedItem} item */
  async function purge(item) {
    const ok = await confirmDialog({
      title: `Delete ${item.name} for good?`,
      message: `${item.name} will be deleted for good, with its sharing. This cannot be undone.`,
      confirm: "Delete for good",
      danger: true,
    });
    if (!ok) return;
    try {
      await api.del(`/api/trash/${item.id}`);
      say(`Deleted ${item.name} for good.`);
    } catch (e) {
      say(`${item.name} could not be deleted: ${errorText(e)}`, "error");
    }
    await refresh();
  }

  return {
    el,
    refresh,
    /** Days the trash keeps what is deleted (0: it deletes at once). */
    days: () => days,
    open() { details.open = true; },
  };
}
