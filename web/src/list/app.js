// The notebook list (`/`): one of your folders, the notebooks shared with you,
// and who is in each notebook right now. Folders are addressed as `/?path=`.
import { h, fill, errorText, encodePath } from "./dom.js";
import { api, ApiError } from "../lib/api.js";
import { readBoot, topBar, poll } from "./page.js";
import { confirmDialog } from "./dialogs.js";
import { openShareDialog } from "./share-dialog.js";
import { icon } from "./icons.js";
import { entryRow, entryTable, updatePresence } from "./files.js";

/** @typedef {import("./files.js").Entry} Entry */
/** @typedef {import("./files.js").Presence} Presence */

const PRESENCE_EVERY_MS = 4000;
const LISTING_EVERY_MS = 15000;

/** @param {HTMLElement} root */
export function mountList(root) {
  const boot = readBoot();
  const me = boot.user.name;
  const admin = boot.user.admin;

  /** @type {{folder: string, entries: Entry[], shared: {id: string, path: string, role: string}[],
   *   presence: Presence, loaded: boolean, sharedLoaded: boolean, listError: string, sharedError: string,
   *   renaming: string | null}} */
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

  function folderFromUrl() {
    const path = new URLSearchParams(location.search).get("path");
    if (path === null) return me;
    const clean = path.replace(/^\/+|\/+$/g, "");
    return clean === "" && !admin ? me : clean;
  }

  // ---- layout
  const flash = h("div", { class: "flash", testid: "flash", role: "status", "aria-live": "polite" });
  const crumbs = h("nav", { class: "crumbs", "aria-label": "Folder" });
  const upload = h("input", {
    type: "file",
    accept: ".ipynb,application/x-ipynb+json",
    multiple: true,
    class: "visually-hidden",
    tabindex: "-1", // the label is the one tab stop
    onchange: () => {
      const files = Array.from(upload.files || []);
      upload.value = "";
      uploadFiles(files);
    },
  });
  const toolbar = h(
    "div",
    { class: "toolbar" },
    crumbs,
    h(
      "div",
      { class: "toolbar-actions", testid: "folder-actions" },
      h("button", { type: "button", class: "btn btn-primary", testid: "new-notebook", onclick: () => newNotebook() }, icon("plus"), "New notebook"),
      h("button", { type: "button", class: "btn", testid: "new-folder", onclick: () => newFolder() }, icon("folder"), "New folder"),
      // A label around the file input: clicking opens the file chooser, and
      // Playwright's set_input_files() on it reaches the input.
      h(
        "label",
        { class: "btn", testid: "upload", tabindex: "0", onkeydown: (/** @type {KeyboardEvent} */ e) => {
          if (e.key === "Enter" || e.key === " ") {
            e.preventDefault();
            upload.click();
          }
        } },
        icon("up"),
        "Upload",
        upload,
      ),
    ),
  );
  const listing = h("div", { class: "listing", testid: "listing", "aria-busy": "true" });
  const files = h(
    "section",
    { class: "panel", "aria-labelledby": "files-title" },
    h("h1", { id: "files-title", class: "visually-hidden" }, "Your notebooks"),
    toolbar,
    flash,
    listing,
  );
  const sharedBody = h("div", { class: "listing", testid: "shared", "aria-busy": "true" });
  const shared = h(
    "section",
    { class: "panel", "aria-labelledby": "shared-title" },
    h("h2", { id: "shared-title", class: "panel-title" }, "Shared with you"),
    sharedBody,
  );
  fill(root, topBar(boot, "list"), h("main", { class: "page" }, files, shared));

  // Drop .ipynb files anywhere on the folder panel to upload them.
  files.addEventListener("dragover", (event) => {
    if (!event.dataTransfer || !Array.from(event.dataTransfer.types).includes("Files")) return;
    event.preventDefault();
    files.classList.add("dropping");
  });
  files.addEventListener("dragleave", (event) => {
    if (!files.contains(/** @type {Node} */ (event.relatedTarget))) files.classList.remove("dropping");
  });
  files.addEventListener("drop", (event) => {
    event.preventDefault();
    files.classList.remove("dropping");
    uploadFiles(Array.from(event.dataTransfer?.files || []));
  });

  // ---- messages
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let flashTimer;
  /**
   * @param {string} text
   * @param {"info" | "error"} [kind]
   */
  function say(text, kind = "info") {
    clearTimeout(flashTimer);
    flash.className = `flash flash-${kind}`;
    flash.setAttribute("role", kind === "error" ? "alert" : "status");
    fill(
      flash,
      h("span", null, text),
      h("button", { type: "button", class: "btn btn-quiet", "aria-label": "Dismiss", onclick: () => say("") }, "✕"),
    );
    flash.hidden = !text;
    if (text && kind === "info") flashTimer = setTimeout(() => say(""), 6000);
  }
  say("");

  // ---- data
  const actions = {
    /** @param {Entry} entry */
    open(entry) {
      if (entry.type === "directory") go(entry.path);
      else location.assign(`/notebooks/${entry.id}`);
    },
    /** @param {Entry} entry */
    share(entry) {
      if (entry.id) openShareDialog({ id: entry.id, path: entry.path }, me);
    },
    rename: startRename,
    remove,
  };

  async function loadFolder() {
    const folder = state.folder;
    try {
      const data = await api.get(`/api/contents/${encodePath(folder)}`);
      if (folder !== state.folder) return;
      if (data.type !== "directory") {
        // A notebook's path: open it.
        location.replace(`/notebooks/${data.id}`);
        return;
      }
      state.entries = data.content;
      state.listError = "";
    } catch (e) {
      if (folder !== state.folder) return;
      state.entries = [];
      state.listError = errorText(e);
    }
    state.loaded = true;
    renderFolder();
  }

  async function loadShared() {
    try {
      const data = await api.get("/api/shared");
      state.shared = data.notebooks;
      state.sharedError = "";
    } catch (e) {
      state.sharedError = errorText(e);
    }
    state.sharedLoaded = true;
    renderShared();
  }

  async function loadPresence() {
    try {
      const data = await api.get("/api/presence");
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

  // ---- rendering
  function sorted(/** @type {Entry[]} */ entries) {
    return [...entries].sort(
      (a, b) =>
        (a.type === "directory" ? 0 : 1) - (b.type === "directory" ? 0 : 1) ||
        a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: "base" }),
    );
  }

  function renderCrumbs() {
    const parts = state.folder ? state.folder.split("/") : [];
    /** @type {{label: string, path: string}[]} */
    const trail = [];
    if (admin) trail.push({ label: "All folders", path: "" });
    parts.forEach((part, i) => {
      const path = parts.slice(0, i + 1).join("/");
      trail.push({ label: i === 0 && part === me ? `${part} (yours)` : part, path });
    });
    fill(
      crumbs,
      h(
        "ol",
        null,
        trail.map((crumb, i) =>
          h(
            "li",
            null,
            i === trail.length - 1
              ? h("span", { "aria-current": "page", testid: "current-folder", dataset: { path: crumb.path } }, crumb.label)
              : h(
                  "a",
                  {
                    href: `/?path=${encodeURIComponent(crumb.path)}`,
                    onclick: (/** @type {MouseEvent} */ e) => {
                      if (e.metaKey || e.ctrlKey) return;
                      e.preventDefault();
                      go(crumb.path);
                    },
                  },
                  crumb.label,
                ),
          ),
        ),
      ),
    );
  }

  /** Whether I may rename and delete things in the folder shown (owners; not top-level folders). */
  function canManageIn(/** @type {string} */ folder) {
    return folder !== "" && (admin || folder.split("/")[0] === me);
  }

  function renderFolder() {
    renderCrumbs();
    // Creating and uploading only where you may: your own folders.
    const tools = /** @type {HTMLElement} */ (toolbar.querySelector(".toolbar-actions"));
    tools.hidden = !canManageIn(state.folder) || Boolean(state.listError);
    listing.setAttribute("aria-busy", state.loaded ? "false" : "true");
    if (!state.loaded) {
      fill(listing, h("p", { class: "empty" }, "Loading…"));
      return;
    }
    if (state.listError) {
      fill(
        listing,
        h("div", { class: "empty" },
          h("p", { class: "alert", role: "alert" }, `This folder cannot be shown: ${state.listError}`),
          state.folder !== me && h("a", { href: "/", onclick: (/** @type {MouseEvent} */ e) => { e.preventDefault(); go(me); } }, "Back to your folder"),
        ),
      );
      return;
    }
    const now = Date.now() / 1000;
    const manage = canManageIn(state.folder);
    const rows = sorted(state.entries).map((entry) =>
      entryRow(entry, { role: "owner", presence: state.presence, actions, canManage: manage, now }),
    );
    if (!rows.length) {
      fill(
        listing,
        h(
          "div",
          { class: "empty", testid: "empty-folder" },
          h("p", { class: "empty-title" }, "This folder is empty"),
          h("p", { class: "muted" }, "Create a notebook, or upload an .ipynb file (you can drop it here)."),
        ),
      );
      return;
    }
    fill(listing, entryTable("entries", "Notebooks and folders", rows));
  }

  function renderShared() {
    sharedBody.setAttribute("aria-busy", state.sharedLoaded ? "false" : "true");
    if (!state.sharedLoaded) {
      fill(sharedBody, h("p", { class: "empty" }, "Loading…"));
      return;
    }
    if (state.sharedError) {
      fill(sharedBody, h("p", { class: "alert", role: "alert" }, `Shared notebooks cannot be shown: ${state.sharedError}`));
      return;
    }
    if (!state.shared.length) {
      fill(
        sharedBody,
        h(
          "div",
          { class: "empty", testid: "empty-shared" },
          h("p", { class: "muted" }, "Nothing is shared with you yet. Notebooks people share with you, or that you open through a share link, appear here."),
        ),
      );
      return;
    }
    const now = Date.now() / 1000;
    const rows = state.shared.map((nb) =>
      entryRow(
        { name: nb.path.split("/").pop() || nb.path, path: nb.path, type: "notebook", id: nb.id, size: null, last_modified: 0 },
        { role: nb.role, presence: state.presence, actions, showFolder: true, canManage: nb.role === "owner", now },
      ),
    );
    fill(sharedBody, entryTable("shared-entries", "Notebooks shared with you", rows));
  }

  // ---- navigation
  /** @param {string} folder */
  function go(folder, push = true) {
    state.folder = folder;
    state.loaded = false;
    state.renaming = null;
    if (push) history.pushState(null, "", folder === me ? "/" : `/?path=${encodeURIComponent(folder)}`);
    renderFolder();
    loadFolder();
  }
  window.addEventListener("popstate", () => go(folderFromUrl(), false));

  // ---- actions
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

  /** @param {string} name */
  function inFolder(name) {
    return state.folder ? `${state.folder}/${name}` : name;
  }

  async function newNotebook() {
    if (!canManageIn(state.folder)) {
      say("You can create notebooks only in your own folder.", "error");
      return;
    }
    const name = freeName("Untitled", ".ipynb");
    try {
      const entry = await api.put(`/api/contents/${encodePath(inFolder(name))}`, { type: "notebook", content: null });
      location.assign(`/notebooks/${entry.id}`);
    } catch (e) {
      say(`The notebook could not be created: ${errorText(e)}`, "error");
      loadFolder();
    }
  }

  async function newFolder() {
    if (!canManageIn(state.folder)) {
      say("You can create folders only in your own folder.", "error");
      return;
    }
    const name = freeName("Untitled Folder", "", " ");
    try {
      const entry = await api.put(`/api/contents/${encodePath(inFolder(name))}`, { type: "directory" });
      await loadFolder();
      const row = listing.querySelector(`[data-testid=folder-row][data-path="${CSS.escape(entry.path)}"]`);
      if (row) startRename(entry, /** @type {HTMLElement} */ (row));
    } catch (e) {
      say(`The folder could not be created: ${errorText(e)}`, "error");
    }
  }

  /** @param {File[]} list */
  async function uploadFiles(list) {
    if (!list.length) return;
    if (!canManageIn(state.folder)) {
      say("You can upload only into your own folder.", "error");
      return;
    }
    say("");
    /** @type {string[]} */
    const done = [];
    /** @type {string[]} */
    const failed = [];
    for (const file of list) {
      if (!file.name.toLowerCase().endsWith(".ipynb")) {
        failed.push(`${file.name} is not a notebook: only .ipynb files can be uploaded.`);
        continue;
      }
      const url = `/api/upload/${encodePath(inFolder(file.name))}`;
      try {
        try {
          await api.put(url, file);
        } catch (e) {
          if (!(e instanceof ApiError && e.status === 409)) throw e;
          const replace = await confirmDialog({
            title: `Replace ${file.name}?`,
            message: `There is already a notebook named ${file.name} in this folder. Replacing it changes it for everyone who has it open.`,
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
    await loadFolder();
    if (failed.length) say(failed.join(" "), "error");
    else if (done.length) say(`Uploaded ${done.join(", ")}.`);
  }

  /**
   * Rename in place: the name becomes a text field (Enter saves, Esc cancels).
   * @param {Entry} entry
   * @param {HTMLElement} row
   */
  function startRename(entry, row) {
    const cell = /** @type {HTMLElement} */ (row.querySelector(".col-name"));
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
      await refresh();
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
    fill(cell, icon(isNotebook ? "notebook" : "folder"), input);
    input.focus();
    const stem = isNotebook ? entry.name.replace(/\.ipynb$/i, "").length : entry.name.length;
    input.setSelectionRange(0, stem);
  }

  /** @param {Entry} entry */
  async function remove(entry) {
    const folder = entry.type === "directory";
    const ok = await confirmDialog({
      title: `Delete ${entry.name}?`,
      message: folder
        ? `The folder ${entry.name} and every notebook in it will be deleted for everyone. This cannot be undone.`
        : `${entry.name} will be deleted for everyone it is shared with; anyone who has it open is disconnected. This cannot be undone.`,
      confirm: "Delete",
      danger: true,
    });
    if (!ok) return;
    try {
      await api.del(`/api/contents/${encodePath(entry.path)}`);
      say(`Deleted ${entry.name}.`);
    } catch (e) {
      say(`${entry.name} could not be deleted: ${errorText(e)}`, "error");
    }
    await refresh();
  }

  // ---- start
  renderFolder();
  renderShared();
  poll(loadPresence, PRESENCE_EVERY_MS);
  poll(refresh, LISTING_EVERY_MS);
}
