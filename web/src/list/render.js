// @ts-check
// Drawing the list page's state: the breadcrumbs, the folder's rows (or why
// there are none), and the notebooks shared with me.
import { h, fill } from "./dom.js";
import { entryRow, entryTable } from "./files.js";

/**
 * @typedef {import("./files.js").Entry} Entry
 * @typedef {import("./files.js").RowActions} RowActions
 * @typedef {import("./store.js").ListStore} ListStore
 * @typedef {import("./layout.js").ListParts} ListParts
 * @typedef {{store: ListStore, parts: ListParts, actions: RowActions, go: (folder: string) => void}} View
 */

/**
 * Folders first, then by name as people sort (numbers by value, case ignored).
 * @param {Entry[]} entries
 */
function sorted(entries) {
  return [...entries].sort(
    (a, b) =>
      (a.type === "directory" ? 0 : 1) - (b.type === "directory" ? 0 : 1) ||
      a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: "base" }),
  );
}

/**
 * A link that navigates in the page (a modified click opens a new tab as usual).
 * @param {string} href
 * @param {() => void} go
 * @param {...import("./dom.js").Child} children
 */
function pageLink(href, go, ...children) {
  return h(
    "a",
    {
      href,
      onclick: (/** @type {MouseEvent} */ e) => {
        if (e.metaKey || e.ctrlKey) return;
        e.preventDefault();
        go();
      },
    },
    ...children,
  );
}

/** @param {View} view */
function renderCrumbs({ store, parts, go }) {
  const { state, me, admin } = store;
  const names = state.folder ? state.folder.split("/") : [];
  /** @type {{label: string, path: string}[]} */
  const trail = [];
  if (admin) trail.push({ label: "All folders", path: "" });
  names.forEach((part, i) => {
    const path = names.slice(0, i + 1).join("/");
    trail.push({ label: i === 0 && part === me ? `${part} (yours)` : part, path });
  });
  fill(
    parts.crumbs,
    h(
      "ol",
      null,
      trail.map((crumb, i) =>
        h(
          "li",
          null,
          i === trail.length - 1
            ? h("span", { "aria-current": "page", testid: "current-folder", dataset: { path: crumb.path } }, crumb.label)
            : pageLink(`/?path=${encodeURIComponent(crumb.path)}`, () => go(crumb.path), crumb.label),
        ),
      ),
    ),
  );
}

/** @param {View} view */
export function renderFolder(view) {
  const { store, parts, actions, go } = view;
  const { state, me } = store;
  const { listing } = parts;
  renderCrumbs(view);
  // Creating and uploading only where you may: your own folders.
  parts.tools.hidden = !store.canManageIn(state.folder) || Boolean(state.listError);
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
  const manage = store.canManageIn(state.folder);
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
  fill(listing, entryTable("entries", "Notebooks, files and folders", rows));
}

/** @param {View} view */
export function renderShared({ store, parts, actions }) {
  const { state } = store;
  const { sharedBody } = parts;
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
