// @ts-check
// Building DOM without innerHTML (text is always text).
//
// Exports:
//   h(tag, props?, ...children)  a new element. `props`: `class`, `dataset`
//     (object; null/false entries skipped), `style` (object of camelCase or
//     `--custom` properties), `on<event>` functions (e.g. `onclick`),
//     `testid` (sets data-testid), booleans set/omit the attribute, anything
//     else set as an attribute. Children: nodes, strings (text nodes), or
//     null/false (skipped); arrays are flattened.
//   clear(node)  removes every child.

/**
 * What h() and fill() take as children; arrays are flattened, null/undefined/false skipped.
 * @typedef {Node | string | number | boolean | null | undefined | Child[]} Child
 * @typedef {string | number | boolean | null | undefined} Scalar
 * A handler of any event type: `onclick` gets a MouseEvent, `onkeydown` a
 * KeyboardEvent (a method signature, so a handler of a narrower event fits).
 * @typedef {{handle(event: Event): void}["handle"]} Handler
 * @typedef {{[key: string]: Scalar | Handler | Record<string, Scalar>}} Props
 */

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props | null} [props]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value == null || value === false) continue;
      if (typeof value === "function") {
        if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      } else if (typeof value === "object") {
        if (key === "dataset") {
          for (const [name, v] of Object.entries(value)) if (v != null && v !== false) el.dataset[name] = String(v);
        } else if (key === "style") {
          for (const [name, v] of Object.entries(value)) {
            if (v == null || v === "") continue;
            if (name.startsWith("--")) el.style.setProperty(name, String(v));
            else el.style.setProperty(name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`), String(v));
          }
        }
      } else if (key === "class") el.className = String(value);
      else if (key === "testid") el.dataset.testid = String(value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/**
 * @param {Element} el
 * @param {Child[]} children
 */
function append(el, children) {
  for (const child of children) {
    if (child == null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** @param {Node} node */
export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
}
