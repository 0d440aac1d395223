// @ts-check
// A modal question with two answers (a native <dialog>: focus stays inside it,
// Esc cancels, Enter on the focused button answers).
//
// Exports: confirmDialog({title, text, ok}) -> Promise<boolean>.
import { h } from "../lib/dom.js";

/**
 * @param {{title: string, text: string, ok: string}} options
 * @returns {Promise<boolean>} true if the person chose `ok`
 */
export function confirmDialog(options) {
  const returnTo = /** @type {HTMLElement | null} */ (document.activeElement);
  const ok = h("button", { type: "submit", class: "btn btn-primary", testid: "confirm-ok", value: "ok" }, options.ok);
  const dialog = /** @type {HTMLDialogElement} */ (h("dialog", {
    class: "confirm-dialog", testid: "confirm-dialog", "aria-labelledby": "confirm-title",
  },
  h("form", { method: "dialog" },
    h("h2", { id: "confirm-title" }, options.title),
    h("p", null, options.text),
    h("div", { class: "confirm-buttons" },
      h("button", { type: "submit", class: "btn", testid: "confirm-cancel", value: "cancel" }, "Cancel"),
      ok))));
  document.body.append(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
      if (returnTo && returnTo.isConnected) returnTo.focus({ preventScroll: true });
    });
    dialog.showModal();
    ok.focus();
  });
}
