// @ts-check
// The notebook list (`/`): one of your folders, the notebooks shared with you,
// and who is in each notebook right now. Folders are addressed as `/?path=`.
//
// The parts: store.js (state and fetching), layout.js (the frame), render.js
// (rows), actions.js (create, upload, delete), rename.js (rename in place),
// trash.js (the Trash panel),
// flash.js (messages). This module wires them together and owns navigation.
import { readBoot, poll } from "./page.js";
import { openShareDialog } from "./share-dialog.js";
import { createStore } from "./store.js";
import { createFlash } from "./flash.js";
import { mountLayout } from "./layout.js";
import { renderFolder, renderShared } from "./render.js";
import { folderActions } from "./actions.js";
import { renamer } from "./rename.js";
import { createTrash } from "./trash.js";

/** @typedef {import("./files.js").Entry} Entry */

const PRESENCE_EVERY_MS = 4000;
const LISTING_EVERY_MS = 15000;

/** @param {HTMLElement} root */
export function mountList(root) {
  const boot = readBoot();
  const me = boot.user.name;
  const store = createStore({
    me,
    admin: boot.user.admin,
    onChange: (what) => (what === "folder" ? showFolder() : showShared()),
  });
  const { state } = store;
  const { el: flash, say } = createFlash();
  const showFolder = () => renderFolder(view);
  const showShared = () => renderShared(view);
  const rename = renamer({ store, say, renderFolder: showFolder, renderShared: showShared });
  const trash = createTrash({ say, restored: () => store.refresh() });
  const actions = folderActions({
    store,
    say,
    trash,
    // A folder just made: name it at once.
    renameNew(entry) {
      const row = parts.listing.querySelector(`[data-testid=folder-row][data-path="${CSS.escape(entry.path)}"]`);
      if (row) rename(entry, /** @type {HTMLElement} */ (row));
    },
  });
  const parts = mountLayout(root, boot, flash, actions);
  parts.page.append(trash.el);

  /** @type {import("./render.js").View} */
  const view = {
    store,
    parts,
    go,
    actions: {
      open(entry) {
        if (entry.type === "directory") go(entry.path);
        else if (entry.type === "notebook") location.assign(`/notebooks/${entry.id}`);
      },
      share(entry) {
        if (entry.id) openShareDialog({ id: entry.id, path: entry.path }, me);
      },
      rename,
      remove: actions.remove,
    },
  };

  /**
   * Show another folder; `push` adds it to the browser's history.
   * @param {string} folder
   */
  function go(folder, push = true) {
    state.folder = folder;
    state.loaded = false;
    state.renaming = null;
    if (push) history.pushState(null, "", folder === me ? "/" : `/?path=${encodeURIComponent(folder)}`);
    showFolder();
    store.loadFolder();
  }
  window.addEventListener("popstate", () => go(store.folderFromUrl(), false));

  showFolder();
  showShared();
  void trash.refresh();
  poll(store.loadPresence, PRESENCE_EVERY_MS);
  poll(store.refresh, LISTING_EVERY_MS);
}
