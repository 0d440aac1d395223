// @ts-check
// DOM helpers of the list, tutor and history views, on top of lib/dom.js's
// h() (which never parses markup: text from the server stays text).
import { h, clear } from "../lib/dom.js";

export { h, clear };

/**
 * @typedef {import("../lib/dom.js").Props} Props
 * @typedef {import("../lib/dom.js").Child} Child
 */

/**
 * Replace an element's children.
 * @template {Element} E
 * @param {E} el
 * @param {...Child} children nodes, strings, arrays of them; null/false skipped
 * @returns {E}
 */
export function fill(el, ...children) {
  clear(el);
  const add = (/** @type {Child} */ child) => {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) child.forEach(add);
    else el.append(child instanceof Node ? child : String(child));
  };
  children.forEach(add);
  return el;
}

/**
 * What went wrong, in words (API errors carry the server's `message`).
 * @param {unknown} error
 */
export function errorText(error) {
  if (error && typeof error === "object" && "message" in error && error.message)
    return String(error.message);
  return String(error || "Something went wrong.");
}

/**
 * A path for a URL: each segment encoded, the slashes kept.
 * @param {string} path
 */
export function encodePath(path) {
  return path.split("/").map(encodeURIComponent).join("/");
}
