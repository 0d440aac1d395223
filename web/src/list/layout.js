// @ts-check
// The list page's frame: the folder panel (breadcrumbs, folder actions, the
// flash line, the listing; files dropped on it are uploaded) and the
// "Shared with you" panel. What fills them is render.js's.
import { h, fill } from "./dom.js";
import { topBar } from "./page.js";
import { icon } from "./icons.js";

/**
 * @typedef {{crumbs: HTMLElement, tools: HTMLElement, listing: HTMLElement, sharedBody: HTMLElement,
 *   page: HTMLElement}} ListParts
 * @typedef {{newNotebook: () => void, newFolder: () => void, upload: (files: File[]) => void}} FolderTools
 */

/**
 * Fill `root` with the page; return the parts that change.
 * @param {HTMLElement} root
 * @param {import("./page.js").Boot} boot
 * @param {HTMLElement} flash
 * @param {FolderTools} tools
 * @returns {ListParts}
 */
export function mountLayout(root, boot, flash, tools) {
  const crumbs = h("nav", { class: "crumbs", "aria-label": "Folder" });
  const upload = h("input", {
    type: "file",
    multiple: true,
    class: "visually-hidden",
    tabindex: "-1", // the label is the one tab stop
    onchange: () => {
      const files = Array.from(upload.files || []);
      upload.value = "";
      tools.upload(files);
    },
  });
  const actions = h(
    "div",
    { class: "toolbar-actions", testid: "folder-actions" },
    h("button", { type: "button", class: "btn btn-primary", testid: "new-notebook", onclick: () => tools.newNotebook() }, icon("plus"), "New notebook"),
    h("button", { type: "button", class: "btn", testid: "new-folder", onclick: () => tools.newFolder() }, icon("folder"), "New folder"),
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
  );
  const listing = h("div", { class: "listing", testid: "listing", "aria-busy": "true" });
  const files = h(
    "section",
    { class: "panel", "aria-labelledby": "files-title" },
    h("h1", { id: "files-title", class: "visually-hidden" }, "Your notebooks"),
    h("div", { class: "toolbar" }, crumbs, actions),
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
  const page = h("main", { class: "page" }, files, shared);
  fill(root, topBar(boot, "list"), page);
  acceptDrops(files, tools.upload);
  return { crumbs, tools: actions, listing, sharedBody, page };
}

/**
 * Files dropped anywhere on `panel` go to `upload`.
 * @param {HTMLElement} panel
 * @param {(files: File[]) => void} upload
 */
function acceptDrops(panel, upload) {
  panel.addEventListener("dragover", (event) => {
    if (!event.dataTransfer || !Array.from(event.dataTransfer.types).includes("Files")) return;
    event.preventDefault();
    panel.classList.add("dropping");
  });
  panel.addEventListener("dragleave", (event) => {
    if (!panel.contains(/** @type {Node} */ (event.relatedTarget))) panel.classList.remove("dropping");
  });
  panel.addEventListener("drop", (event) => {
    event.preventDefault();
    panel.classList.remove("dropping");
    upload(Array.from(event.dataTransfer?.files || []));
  });
}
