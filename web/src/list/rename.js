// @ts-check
// Renaming in place: the row's name becomes a text field with the stem
// selected; Enter or leaving the field saves, Esc cancels. While it is open
// the page does not reload the listing (state.renaming), so the field stays.
import { h, fill, errorText, encodePath } from "./dom.js";
import { api } from "../lib/api.js";
import { icon } from "./icons.js";

/**
 * @typedef {import("./files.js").Entry} Entry
 * @typedef {{
 *   store: import("./store.js").ListStore,
 *   say: import("./flash.js").Say,
 *   renderFolder: () => void,
 *   renderShared: () => void,
 * }} RenameContext
 */

/**
 * @param {RenameContext} context
 * @returns {(entry: Entry, row: HTMLElement) => void}
 */
export function renamer({ store, say, renderFolder, renderShared }) {
  const { state } = store;
  return function startRename(entry, row) {
    const cell = /** @type {HTMLElement | null} */ (row.querySelector(".col-name"));
    if (!cell || state.renaming === entry.path) return;
    state.renaming = entry.path;
    const isNotebook = entry.type === "notebook";
    const input = h("input", {
      type: "text",
      value: entry.name,
      testid: "rename-input",
      class: "rename-input",
      "aria-label": `New name for ${entry.name}`,
      spellcheck: "false",
    });
    let finished = false;
    const finish = async (/** @type {boolean} */ save) => {
      if (finished) return;
      finished = true;
      let name = input.value.trim();
      if (isNotebook && name && !name.toLowerCase().endsWith(".ipynb")) name += ".ipynb";
      state.renaming = null;
      if (!save || !name || name === entry.name) {
        renderFolder();
        renderShared();
        return;
      }
      if (name.includes("/")) {
        say("A name cannot contain “/”.", "error");
        renderFolder();
        return;
      }
      const parent = entry.path.split("/").slice(0, -1).join("/");
      const target = parent ? `${parent}/${name}` : name;
      try {
        await api.patch(`/api/contents/${encodePath(entry.path)}`, { path: target });
        say(`Renamed ${entry.name} to ${name}.`);
      } catch (e) {
        say(`${entry.name} could not be renamed: ${errorText(e)}`, "error");
      }
      await store.refresh();
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        finish(true);
      } else if (event.key === "Escape") {
        event.preventDefault();
        finish(false);
      }
    });
    input.addEventListener("blur", () => finish(true));
    fill(cell, icon(entry.type === "directory" ? "folder" : isNotebook ? "notebook" : "file"), input);
    input.focus();
    // The name without its extension is selected (all of a folder's name).
    const dot = entry.name.lastIndexOf(".");
    const stem = isNotebook
      ? entry.name.replace(/\.ipynb$/i, "").length
      : entry.type === "file" && dot > 0 ? dot : entry.name.length;
    input.setSelectionRange(0, stem);
  };
}
