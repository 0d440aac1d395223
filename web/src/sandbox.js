// @ts-check
// The script of the output frame (/sandbox, inlined by the server). The frame
// is sandboxed without allow-same-origin: whatever an output does here runs in
// an opaque origin, with no network (the frame's CSP) and no way into the app.
//
// Protocol with the notebook page (the only peer: window.parent):
//   -> parent {type: "ready"}                when loaded, and asks for content
//   <- parent {type: "render", bundle}       a mime bundle; renders the richest of
//                                            text/html, image/svg+xml,
//                                            application/javascript (text/plain else)
//   <- parent {type: "theme", theme}         "light" or "dark": the page's colours
//                                            changed (the first comes in the URL,
//                                            `/sandbox?theme=dark`, so nothing flashes)
//   -> parent {type: "height", height}       the content height, on every change
//
// HTML is inserted and its <script> elements re-created so they run (as
// JupyterLab does: innerHTML alone never runs scripts). JavaScript runs with
// `element` bound to its output node, like classic Jupyter.

// Colours as lib/base.css's light and dark themes (the frame cannot load it).
const STYLE = `
:root { color-scheme: light; --fg: #1f2328; --stripe: #f5f5f5; --rule: #999; --error: #cf222e; }
:root[data-theme=dark] { color-scheme: dark; --fg: #e6edf3; --stripe: #161b22; --rule: #3d444d; --error: #f85149; }
html, body { margin: 0; padding: 0; background: transparent; }
body { font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: var(--fg); overflow-x: auto; overflow-y: hidden; }
#out { display: flow-root; padding: 2px 0; }
pre, code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
table { border-collapse: collapse; border-spacing: 0; font-size: 12px; }
thead { border-bottom: 1px solid var(--rule); vertical-align: bottom; }
th, td { padding: 4px 8px; text-align: right; vertical-align: middle; border: none; }
th { font-weight: 600; }
tbody tr:nth-child(odd) { background: var(--stripe); }
tbody tr:hover { background: rgba(66, 165, 245, .2); }
img, svg { max-width: 100%; height: auto; }
.error { color: var(--error); white-space: pre-wrap; }
`;

/** @param {unknown} theme */
function setTheme(theme) {
  document.documentElement.dataset.theme = theme === "dark" ? "dark" : "light";
}
setTheme(new URLSearchParams(location.search).get("theme"));

const root = document.createElement("div");
root.id = "out";
let lastHeight = -1;

function reportHeight() {
  // The body, not just #out: output scripts often append to document.body.
  const rect = document.body.getBoundingClientRect();
  const scrollbar = document.documentElement.scrollWidth > document.documentElement.clientWidth ? 16 : 0;
  const height = Math.ceil(Math.max(rect.bottom, root.getBoundingClientRect().bottom)) + scrollbar;
  if (height !== lastHeight) {
    lastHeight = height;
    window.parent.postMessage({ type: "height", height }, "*");
  }
}

/** @param {Element} container */
function runScripts(container) {
  for (const old of Array.from(container.querySelectorAll("script"))) {
    const script = document.createElement("script");
    for (const attr of Array.from(old.attributes)) script.setAttribute(attr.name, attr.value);
    script.textContent = old.textContent;
    old.replaceWith(script);
  }
}

/** @param {string} message */
function showError(message) {
  const pre = document.createElement("pre");
  pre.className = "error";
  pre.textContent = message;
  root.append(pre);
}

/** @param {unknown} value */
const text = (value) => (Array.isArray(value) ? value.join("") : String(value ?? ""));

/** @type {Record<string, (data: unknown) => void>} */
const renderers = {
  "text/html"(data) {
    const holder = document.createElement("div");
    holder.innerHTML = text(data);
    root.append(holder);
    runScripts(holder);
  },
  "image/svg+xml"(data) {
    const holder = document.createElement("div");
    holder.innerHTML = text(data);
    root.append(holder);
  },
  "application/javascript"(data) {
    const element = document.createElement("div");
    root.append(element);
    try {
      // eslint-disable-next-line no-new-func
      new Function("element", text(data))(element);
    } catch (error) {
      showError(`Javascript error adding output!\n${error}`);
    }
  },
  "text/plain"(data) {
    const pre = document.createElement("pre");
    pre.textContent = text(data);
    root.append(pre);
  },
};

const ORDER = ["text/html", "image/svg+xml", "application/javascript", "text/plain"];

/**
 * Messages from the parent, by type; the fields are checked here (anything may arrive).
 * @type {Record<string, (message: Record<string, unknown>) => void>}
 */
const handlers = {
  render(message) {
    const bundle = /** @type {Record<string, unknown>} */ (message.bundle && typeof message.bundle === "object" ? message.bundle : {});
    document.body.replaceChildren(root);
    root.replaceChildren();
    const mime = ORDER.find((m) => m in bundle);
    if (mime) renderers[mime](bundle[mime]);
    reportHeight();
  },
  theme(message) {
    setTheme(message.theme);
  },
};

window.addEventListener("message", (event) => {
  if (event.source !== window.parent || !event.data || typeof event.data !== "object") return;
  const handler = handlers[String(event.data.type)];
  if (handler) handler(event.data);
});

function start() {
  const style = document.createElement("style");
  style.textContent = STYLE;
  document.head.append(style);
  document.body.append(root);
  new ResizeObserver(reportHeight).observe(document.body);
  new MutationObserver(reportHeight).observe(document.body, { childList: true, subtree: true, attributes: true, characterData: true });
  window.addEventListener("load", reportHeight);
  document.addEventListener("load", reportHeight, true); // images inside outputs
  window.parent.postMessage({ type: "ready" }, "*");
}

if (document.body) start();
else document.addEventListener("DOMContentLoaded", start);
