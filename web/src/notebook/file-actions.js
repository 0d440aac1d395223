// @ts-check
// Rename and Share from inside the notebook (owners), as JupyterLab's File menu
// has them: Rename asks for the new name in a small dialog (the stem selected,
// as in the list); every open tab follows the new path through the document.
// Share opens the list page's share dialog in place.
//
// Exports: ownerActions({notebookId, me, api, notice, path}) -> {el, setRole(role)}.
import "../lib/dialog.css";
import { h } from "../lib/dom.js";
import { openShareDialog } from "../list/share-dialog.js";
import { encodePath } from "../list/dom.js";

/**
 * @param {{notebookId: string, me: string, api: typeof import("../lib/api.js").api,
 *   notice: (text: string, testid?: string) => void, path: () => string}} options
 */
export function ownerActions({ notebookId, me, api, notice, path }) {
  const rename = h("button", {
    type: "button", class: "btn btn-quiet", testid: "rename-notebook", title: "Rename this notebook",
    onclick: () => void askName(),
  }, "Rename");
  const share = h("button", {
    type: "button", class: "btn btn-quiet", testid: "share-notebook", title: "Share this notebook",
    onclick: () => openShareDialog({ id: notebookId, path: path() }, me),
  }, "Share");
  const el = h("span", { class: "owner-actions" }, rename, share);

  async function askName() {
    const current = path();
    const folder = current.split("/").slice(0, -1).join("/");
    const name = current.split("/").pop() || "";
    const field = /** @type {HTMLInputElement} */ (h("input", {
      type: "text", testid: "rename-field", value: name, "aria-label": "New name", spellcheck: "false",
    }));
    const error = h("p", { class: "rename-error", testid: "rename-error", role: "alert", hidden: true });
    const dialog = /** @type {HTMLDialogElement} */ (h("dialog", {
      class: "modal modal-small", testid: "rename-dialog", "aria-labelledby": "rename-title",
    },
    h("form", { method: "dialog" },
      h("h2", { id: "rename-title" }, "Rename notebook"),
      field, error,
      h("div", { class: "modal-actions" },
        // Not a submit button: Enter in the field submits the form with the default, Rename.
        h("button", { type: "button", class: "btn", testid: "rename-cancel", onclick: () => dialog.close() }, "Cancel"),
        h("button", { type: "submit", class: "btn btn-primary", testid: "rename-ok", value: "ok" }, "Rename")))));
    document.body.append(dialog);
    dialog.addEventListener("submit", async (event) => {
      const submitter = /** @type {SubmitEvent} */ (event).submitter;
      if (!(submitter instanceof HTMLButtonElement) || submitter.value !== "ok") return;
      event.preventDefault(); // stay open until the server has answered
      let wanted = field.value.trim();
      if (!wanted || wanted === name) {
        dialog.close();
        return;
      }
      if (!wanted.endsWith(".ipynb")) wanted += ".ipynb";
      try {
        await api.patch(`/api/contents/${encodePath(current)}`, { path: folder ? `${folder}/${wanted}` : wanted });
        dialog.close();
        notice(`Renamed to ${wanted}.`);
      } catch (e) {
        error.hidden = false;
        error.textContent = /** @type {Error} */ (e).message;
      }
    });
    dialog.addEventListener("close", () => dialog.remove());
    dialog.showModal();
    field.focus();
    field.setSelectionRange(0, name.endsWith(".ipynb") ? name.length - ".ipynb".length : name.length);
  }

  return {
    el,
    /** @param {string} role */
    setRole(role) {
      el.hidden = role !== "owner";
    },
  };
}
