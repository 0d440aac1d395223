// @ts-check
// The list page's one-line messages: what an action did, or why it failed.
// Errors stay until dismissed; other messages fade after a few seconds.
import { h, fill } from "./dom.js";

const INFO_FOR_MS = 6000;

/**
 * @typedef {(text: string, kind?: "info" | "error") => void} Say
 */

/** @returns {{el: HTMLElement, say: Say}} */
export function createFlash() {
  const el = h("div", { class: "flash", testid: "flash", role: "status", "aria-live": "polite" });
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  /** @type {Say} */
  function say(text, kind = "info") {
    clearTimeout(timer);
    el.className = `flash flash-${kind}`;
    el.setAttribute("role", kind === "error" ? "alert" : "status");
    fill(
      el,
      h("span", null, text),
      h("button", { type: "button", class: "btn btn-quiet", "aria-label": "Dismiss", onclick: () => say("") }, "✕"),
    );
    el.hidden = !text;
    if (text && kind === "info") timer = setTimeout(() => say(""), INFO_FOR_MS);
  }
  say("");
  return { el, say };
}
