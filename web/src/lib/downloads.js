// @ts-check
// The "Download" menu of a notebook, in the list and on the notebook page: the
// notebook as it is now (live changes included) in the forms the server exports.
//
// Exports: FORMATS; downloadMenu(notebookId, path) -> a <details> whose links
// download each form (Escape or a click elsewhere closes it).
import { h } from "./dom.js";

/** @typedef {{format: string, label: string, extension: string}} Format */

/** @type {Format[]} */
export const FORMATS = [
  { format: "ipynb", label: "Notebook (.ipynb)", extension: ".ipynb" },
  { format: "stripped", label: "Without outputs (.ipynb)", extension: ".ipynb" },
  { format: "script", label: "Python script (.py)", extension: ".py" },
  { format: "html", label: "HTML page (.html)", extension: ".html" },
];

/**
 * @param {string} notebookId
 * @param {string} path  the notebook's path, for the names of the files
 */
export function downloadMenu(notebookId, path) {
  const name = path.split("/").pop() || "notebook.ipynb";
  const stem = name.replace(/\.ipynb$/, "");
  const links = FORMATS.map(({ format, label, extension }) =>
    h("a", {
      class: "menu-item", role: "menuitem", testid: `download-${format}`,
      href: `/api/notebooks/${notebookId}?download=1&format=${format}`,
      download: `${stem}${extension}`,
      onclick: () => close(),
    }, label));
  const summary = h("summary", { class: "btn btn-quiet", testid: "download", title: `Download ${name}`, "aria-label": `Download ${name}` }, "Download");
  const menu = h("details", { class: "menu", testid: "download-menu" },
    summary,
    h("div", { class: "menu-list", role: "menu", "aria-label": `Download ${name} as` }, links));
  const close = () => { menu.open = false; };
  menu.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && menu.open) { close(); summary.focus(); event.stopPropagation(); }
  });
  closeOnClickElsewhere();
  return menu;
}

let listening = false;

/** One listener for every menu on the page: a click outside an open menu closes it. */
function closeOnClickElsewhere() {
  if (listening) return;
  listening = true;
  document.addEventListener("click", (event) => {
    for (const open of document.querySelectorAll("details.menu[open]")) {
      if (!open.contains(/** @type {Node} */ (event.target))) /** @type {HTMLDetailsElement} */ (open).open = false;
    }
  });
}
