// @ts-check
// Modal questions as <dialog> elements (focus stays inside, Esc cancels).
import { h } from "./dom.js";

/**
 * Ask to confirm something; resolves true when confirmed.
 * @param {{title: string, message: string, confirm: string, danger?: boolean}} options
 * @returns {Promise<boolean>}
 */
export function confirmDialog({ title, message, confirm, danger = false }) {
  return new Promise((resolve) => {
    const cancel = h("button", { type: "button", class: "btn", testid: "confirm-cancel" }, "Cancel");
    const ok = h(
      "button",
      { type: "submit", class: danger ? "btn btn-danger" : "btn btn-primary", testid: "confirm-ok", value: "ok" },
      confirm,
    );
    const dialog = h(
      "dialog",
      { class: "modal modal-small", testid: "confirm-dialog", "aria-labelledby": "confirm-title" },
      h(
        "form",
        { method: "dialog" },
        h("h2", { id: "confirm-title" }, title),
        h("p", null, message),
        h("div", { class: "modal-actions" }, cancel, ok),
      ),
    );
    cancel.addEventListener("click", () => dialog.close(""));
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "ok");
    });
    document.body.append(dialog);
    dialog.showModal();
    ok.focus();
  });
}
