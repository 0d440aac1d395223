// Short-lived messages at the bottom left: join/leave notices
// ([data-testid=notice]), raised hands, kernel messages and errors.
//
// Exports: createNotices(root) -> notice(text, testid = "notice", kind = "")
//   where kind "error" shows it in red. Each stays 8 s (errors 12 s); at most 5.
import { h } from "../lib/dom.js";

/** @param {HTMLElement} root */
export function createNotices(root) {
  const stack = h("div", { class: "toast-stack", "aria-live": "polite" });
  root.append(stack);
  /** @param {string} text @param {string} [testid] @param {string} [kind] */
  return function notice(text, testid = "notice", kind = "") {
    if (testid === "error") {
      kind = "error";
      testid = "error";
    }
    const toast = h("div", { class: `toast ${kind}`, testid, role: kind === "error" ? "alert" : "status" }, text);
    stack.append(toast);
    while (stack.childElementCount > 5) stack.firstElementChild?.remove();
    setTimeout(() => toast.remove(), kind === "error" ? 12000 : 8000);
  };
}
