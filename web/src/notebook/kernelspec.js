// @ts-check
// The notebook's kernel, chosen once for everyone in it: a select in the header
// (editors) or its name (viewers), following the document's metadata, so every
// open page shows the same choice and the next run starts that kernel. Choosing
// another kind while a kernel runs asks first: that kernel stops for everyone.
//
// Exports: kernelChooser({doc, api, notebookId, notice}) -> {el, setReadOnly(readOnly)}.
import * as Y from "yjs";
import { h } from "../lib/dom.js";
import { confirmDialog } from "./confirm.js";

/** @typedef {{default: string, kernelspecs: Record<string, {name: string, spec: {display_name: string, language: string}}>}} Listing */

/**
 * @param {{doc: Y.Doc, api: typeof import("../lib/api.js").api, notebookId: string,
 *   notice: (text: string, testid?: string) => void}} options
 */
export function kernelChooser({ doc, api, notebookId, notice }) {
  const meta = doc.getMap("meta");
  const kernel = doc.getMap("kernel");
  /** @type {Listing | null} */
  let listing = null;
  let readOnly = true;
  const select = /** @type {HTMLSelectElement} */ (h("select", {
    class: "kernel-choice", testid: "kernel-choice", "aria-label": "Kernel of this notebook",
    title: "The kernel of this notebook, for everyone in it",
    onchange: () => void choose(select.value),
  }));
  const name = h("span", { class: "kernel-name", testid: "kernel-name" });
  const el = h("span", { class: "kernel-chooser" }, select, name);

  /** The kernelspec the document names, or the server's default. */
  function current() {
    const metadata = meta.get("metadata");
    const spec = metadata instanceof Y.Map ? metadata.get("kernelspec") : /** @type {any} */ (metadata)?.kernelspec;
    const chosen = spec instanceof Y.Map ? spec.toJSON() : spec;
    return {
      name: (chosen && typeof chosen.name === "string" && chosen.name) || listing?.default || "python3",
      display: (chosen && typeof chosen.display_name === "string" && chosen.display_name) || "",
    };
  }

  function render() {
    const { name: chosen, display } = current();
    const specs = listing ? Object.values(listing.kernelspecs) : [];
    const known = specs.some((s) => s.name === chosen);
    const options = specs.map((s) => h("option", { value: s.name }, s.spec.display_name || s.name));
    if (!known) options.unshift(h("option", { value: chosen }, `${display || chosen} (not installed)`));
    select.replaceChildren(...options);
    select.value = chosen;
    const label = specs.find((s) => s.name === chosen)?.spec.display_name || display || chosen;
    name.textContent = label;
    select.hidden = readOnly;
    name.hidden = !readOnly;
  }

  /** @param {string} wanted */
  async function choose(wanted) {
    const { name: chosen } = current();
    if (wanted === chosen) return;
    const label = listing?.kernelspecs[wanted]?.spec.display_name || wanted;
    const status = kernel.get("status");
    if (status !== null && status !== undefined && status !== "dead") {
      const sure = await confirmDialog({
        title: `Switch to ${label}?`,
        text: "The running kernel stops for everyone in this notebook: its variables are lost. The new kernel starts when a cell runs.",
        ok: "Switch kernel",
      });
      if (!sure) {
        render();
        return;
      }
    }
    try {
      await api.put(`/api/notebooks/${notebookId}/kernelspec`, { name: wanted });
    } catch (error) {
      notice(`The kernel could not be changed: ${/** @type {Error} */ (error).message}`);
      render();
    }
  }

  meta.observeDeep(render);
  void api.get("/api/kernelspecs").then((data) => {
    listing = /** @type {Listing} */ (data);
    render();
  }, () => render());
  render();
  return {
    el,
    /** @param {boolean} value */
    setReadOnly(value) {
      readOnly = value;
      render();
    },
  };
}
