// @ts-check
// What the list page knows (the folder shown, its entries, the notebooks
// shared with me, who is where) and the requests that fetch it. Loading
// changes the state and then calls `onChange` with what changed; rendering is
// the caller's.
import { errorText, encodePath } from "./dom.js";
import { api } from "../lib/api.js";
import { updatePresence } from "./files.js";

/**
 * @typedef {import("./files.js").Entry} Entry
 * @typedef {import("./files.js").Presence} Presence
 * @typedef {{id: string, path: string, role: string}} SharedNotebook
 * @typedef {Entry & {content?: Entry[]}} Contents a folder with its entries, or one notebook
 * @typedef {{folder: string, entries: Entry[], shared: SharedNotebook[],
 *   presence: Presence, loaded: boolean, sharedLoaded: boolean, listError: string, sharedError: string,
 *   renaming: string | null}} ListState
 * @typedef {{
 *   me: string,
 *   admin: boolean,
 *   state: ListState,
 *   folderFromUrl: () => string,
 *   canManageIn: (folder: string) => boolean,
 *   inFolder: (name: string) => string,
 *   freeName: (stem: string, suffix: string, separator?: string) => string,
 *   loadFolder: () => Promise<void>,
 *   loadShared: () => Promise<void>,
 *   loadPresence: () => Promise<void>,
 *   refresh: () => Promise<void>,
 * }} ListStore
 */

/**
 * @param {{me: string, admin: boolean, onChange: (what: "folder" | "shared") => void}} options
 * @returns {ListStore}
 */
export function createStore({ me, admin, onChange }) {
  /** The folder in the address (`/?path=`); mine when none. */
  function folderFromUrl() {
    const path = new URLSearchParams(location.search).get("path");
    if (path === null) return me;
    const clean = path.replace(/^\/+|\/+$/g, "");
    return clean === "" && !admin ? me : clean;
  }

  /** @type {ListState} */
  const state = {
    folder: folderFromUrl(),
    entries: [],
    shared: [],
    presence: {},
    loaded: false,
    sharedLoaded: false,
    listError: "",
    sharedError: "",
    renaming: null,
  };

  /**
   * Whether I may rename and delete things in the folder shown (owners; not top-level folders).
   * @param {string} folder
   */
  function canManageIn(folder) {
    return folder !== "" && (admin || folder.split("/")[0] === me);
  }

  /** @param {string} name */
  function inFolder(name) {
    return state.folder ? `${state.folder}/${name}` : name;
  }

  /**
   * A name not used in this folder: "Untitled.ipynb", "Untitled1.ipynb", ...
   * @param {string} stem
   * @param {string} suffix
   */
  function freeName(stem, suffix, separator = "") {
    const taken = new Set(state.entries.map((e) => e.name.toLowerCase()));
    for (let i = 0; ; i++) {
      const name = `${stem}${i ? `${separator}${i}` : ""}${suffix}`;
      if (!taken.has(name.toLowerCase())) return name;
    }
  }

  async function loadFolder() {
    const folder = state.folder;
    try {
      const data = /** @type {Contents} */ (await api.get(`/api/contents/${encodePath(folder)}`));
      if (folder !== state.folder) return;
      if (data.type === "notebook") {
        // A notebook's path: open it.
        location.replace(`/notebooks/${data.id}`);
        return;
      }
      if (data.type === "file") throw new Error(`${data.path} is a file, not a folder.`);
      state.entries = data.content || [];
      state.listError = "";
    } catch (e) {
      if (folder !== state.folder) return;
      state.entries = [];
      state.listError = errorText(e);
    }
    state.loaded = true;
    onChange("folder");
  }

  async function loadShared() {
    try {
      const data = /** @type {{notebooks: SharedNotebook[]}} */ (await api.get("/api/shared"));
      state.shared = data.notebooks;
      state.sharedError = "";
    } catch (e) {
      state.sharedError = errorText(e);
    }
    state.sharedLoaded = true;
    onChange("shared");
  }

  async function loadPresence() {
    try {
      const data = /** @type {{notebooks?: Presence}} */ (await api.get("/api/presence"));
      state.presence = data.notebooks || {};
      updatePresence(document, state.presence);
    } catch (e) {
      // Presence is a nicety: keep the last known state, note it for operators.
      console.warn("presence unavailable:", errorText(e));
    }
  }

  async function refresh() {
    if (state.renaming !== null) return; // never yank an input from under the user
    await Promise.all([loadFolder(), loadShared()]);
  }

  return { me, admin, state, folderFromUrl, canManageIn, inFolder, freeName, loadFolder, loadShared, loadPresence, refresh };
}
