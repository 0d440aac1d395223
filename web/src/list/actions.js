// @ts-check
// What the list page's buttons do: create a notebook or a folder, upload
// files, notebooks or not (asking before replacing one), delete (to the Trash). Each one says how it
// went in the flash line and reloads what it changed.
import { errorText, encodePath } from "./dom.js";
import { api, ApiError } from "../lib/api.js";
import { confirmDialog } from "./dialogs.js";

/**
 * @typedef {import("./files.js").Entry} Entry
 * @typedef {{
 *   store: import("./store.js").ListStore,
 *   say: import("./flash.js").Say,
 *   renameNew: (entry: Entry) => void,
 *   trash: ReturnType<typeof import("./trash.js").createTrash>,
 * }} ActionContext
 */

/** @param {ActionContext} context */
export function folderActions({ store, say, renameNew, trash }) {
  const { state } = store;

  async function newNotebook() {
    if (!store.canManageIn(state.folder)) {
      say("You can create notebooks only in your own folder.", "error");
      return;
    }
    const name = store.freeName("Untitled", ".ipynb");
    try {
      const entry = /** @type {Entry} */ (await api.put(`/api/contents/${encodePath(store.inFolder(name))}`, { type: "notebook", content: null }));
      location.assign(`/notebooks/${entry.id}`);
    } catch (e) {
      say(`The notebook could not be created: ${errorText(e)}`, "error");
      store.loadFolder();
    }
  }

  async function newFolder() {
    if (!store.canManageIn(state.folder)) {
      say("You can create folders only in your own folder.", "error");
      return;
    }
    const name = store.freeName("Untitled Folder", "", " ");
    try {
      const entry = /** @type {Entry} */ (await api.put(`/api/contents/${encodePath(store.inFolder(name))}`, { type: "directory" }));
      await store.loadFolder();
      renameNew(entry);
    } catch (e) {
      say(`The folder could not be created: ${errorText(e)}`, "error");
    }
  }

  /** @param {File[]} list */
  async function upload(list) {
    if (!list.length) return;
    if (!store.canManageIn(state.folder)) {
      say("You can upload only into your own folder.", "error");
      return;
    }
    say("");
    /** @type {string[]} */
    const done = [];
    /** @type {string[]} */
    const failed = [];
    for (const file of list) {
      const url = `/api/upload/${encodePath(store.inFolder(file.name))}`;
      try {
        try {
          await api.put(url, file);
        } catch (e) {
          if (!(e instanceof ApiError && e.status === 409)) throw e;
          const replace = await confirmDialog({
            title: `Replace ${file.name}?`,
            message: file.name.toLowerCase().endsWith(".ipynb")
              ? `There is already a notebook named ${file.name} in this folder. Replacing it changes it for everyone who has it open.`
              : `There is already a file named ${file.name} in this folder. Replacing it cannot be undone.`,
            confirm: "Replace",
            danger: true,
          });
          if (!replace) continue;
          await api.put(`${url}?overwrite=1`, file);
        }
        done.push(file.name);
      } catch (e) {
        failed.push(`${file.name} could not be uploaded: ${errorText(e)}`);
      }
    }
    await store.loadFolder();
    if (failed.length) say(failed.join(" "), "error");
    else if (done.length) say(`Uploaded ${done.join(", ")}.`);
  }

  /** @param {Entry} entry */
  async function remove(entry) {
    const folder = entry.type === "directory";
    const days = trash.days();
    const what = folder
      ? `The folder ${entry.name} and every notebook in it will be deleted for everyone.`
      : entry.type === "file"
        ? `The file ${entry.name} will be deleted.`
        : `${entry.name} will be deleted for everyone it is shared with; anyone who has it open is disconnected.`;
    const ok = await confirmDialog({
      title: `Delete ${entry.name}?`,
      message: days > 0
        ? `${what} It goes to your Trash, where you can restore it, shared as it was, for ${days} days.`
        : `${what} This cannot be undone.`,
      confirm: "Delete",
      danger: true,
    });
    if (!ok) return;
    try {
      await api.del(`/api/contents/${encodePath(entry.path)}`);
      say(days > 0 ? `Moved ${entry.name} to the Trash.` : `Deleted ${entry.name}.`);
      trash.open();
    } catch (e) {
      say(`${entry.name} could not be deleted: ${errorText(e)}`, "error");
    }
    await Promise.all([store.refresh(), trash.refresh()]);
  }

  return { newNotebook, newFolder, upload, remove };
}
