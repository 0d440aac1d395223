// Building DOM without innerHTML (text is always text).
//
// Exports:
//   h(tag, props?, ...children)  a new element. `props`: `class`, `dataset`
//     (object; null/false entries skipped), `style` (object; `--custom` properties too), `on<event>` functions (e.g. `onclick`),
//     `testid` (sets data-testid), booleans set/omit the attribute, anything
//     else set as an attribute. Children: nodes, strings (text nodes), or
//     null/false (skipped); arrays are flattened.
//   clear(node)  removes every child.

/**
 * @param {string} tag
 * @param {Record<string, any> | null} [props]
 * @param {...any} children
 * @returns {HTMLElement}
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value == null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "testid") el.dataset.testid = value;
      else if (key === "dataset") {
        for (const [name, v] of Object.entries(value)) if (v != null && v !== false) el.dataset[name] = String(v);
      }
      else if (key === "style") {
        for (const [name, v] of Object.entries(value)) {
          if (v == null || v === "") continue;
          if (name.startsWith("--")) el.style.setProperty(name, String(v));
          else /** @type {any} */ (el.style)[name] = v;
        }
      }
      else if (key.startsWith("on") && typeof value === "function") {
        el.addEventListener(key.slice(2), value);
      } else el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** @param {Node} el @param {any[]} children */
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
