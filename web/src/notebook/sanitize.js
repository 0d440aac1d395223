// Allowlist HTML sanitizer for what the page itself renders from other
// people's text: markdown cells and markdown outputs. Rich outputs (HTML, JS,
// SVG) never come here; they go to the sandbox frame.
//
// Exports:
//   sanitize(html, {attachments?})  a DocumentFragment with only allowed
//     elements/attributes; links open in a new tab without referrer; images only
//     from data:image URLs (or `attachment:<name>` resolved from the cell's
//     attachments).
//
// Parsed in an inert <template> (nothing loads or runs while parsing).

const DROP = new Set([
  "SCRIPT", "STYLE", "IFRAME", "FRAME", "FRAMESET", "OBJECT", "EMBED", "APPLET", "NOSCRIPT",
  "TEMPLATE", "LINK", "META", "BASE", "TITLE", "HEAD", "FORM", "INPUT", "BUTTON", "SELECT",
  "TEXTAREA", "OPTION", "SVG", "MATH", "AUDIO", "VIDEO", "SOURCE", "TRACK", "CANVAS", "PORTAL",
]);
const ALLOWED = new Set([
  "A", "ABBR", "B", "BLOCKQUOTE", "BR", "CAPTION", "CENTER", "CITE", "CODE", "COL", "COLGROUP",
  "DD", "DEL", "DETAILS", "DFN", "DIV", "DL", "DT", "EM", "FIGCAPTION", "FIGURE", "H1", "H2",
  "H3", "H4", "H5", "H6", "HR", "I", "IMG", "INS", "KBD", "LI", "MARK", "OL", "P", "PRE", "Q",
  "S", "SAMP", "SMALL", "SPAN", "STRIKE", "STRONG", "SUB", "SUMMARY", "SUP", "TABLE", "TBODY",
  "TD", "TFOOT", "TH", "THEAD", "TR", "TT", "U", "UL", "VAR", "WBR",
]);
const ATTRS = new Set([
  "title", "alt", "align", "valign", "colspan", "rowspan", "scope", "width", "height", "start",
  "reversed", "open", "lang", "dir", "cite", "datetime", "data-math",
]);
const SAFE_LINK = /^(?:https?:|mailto:|#)/i;
const SAFE_IMAGE = /^data:image\/(?:png|jpe?g|gif|webp|bmp);base64,[a-z0-9+/=\s]+$/i;

/**
 * @param {string} html
 * @param {{attachments?: Record<string, Record<string, string>>}} [options]
 * @returns {DocumentFragment}
 */
export function sanitize(html, options = {}) {
  const template = document.createElement("template");
  template.innerHTML = html;
  clean(template.content, options.attachments || {});
  return template.content;
}

/** @param {Node} parent @param {Record<string, Record<string, string>>} attachments */
function clean(parent, attachments) {
  for (const node of Array.from(parent.childNodes)) {
    if (node.nodeType === Node.COMMENT_NODE) {
      node.remove();
      continue;
    }
    if (node.nodeType !== Node.ELEMENT_NODE) continue;
    const el = /** @type {Element} */ (node);
    const tag = el.tagName.toUpperCase();
    if (DROP.has(tag)) {
      el.remove();
      continue;
    }
    clean(el, attachments);
    if (!ALLOWED.has(tag)) {
      el.replaceWith(...Array.from(el.childNodes));
      continue;
    }
    for (const attr of Array.from(el.attributes)) {
      const name = attr.name.toLowerCase();
      const keep =
        ATTRS.has(name) ||
        (name === "class" && /^[\w\s-]*$/.test(attr.value)) ||
        (name === "href" && tag === "A") ||
        (name === "src" && tag === "IMG");
      if (!keep) el.removeAttribute(attr.name);
    }
    if (tag === "A") {
      const href = el.getAttribute("href") || "";
      if (!SAFE_LINK.test(href.trim())) el.removeAttribute("href");
      else if (!href.startsWith("#")) {
        el.setAttribute("target", "_blank");
        el.setAttribute("rel", "noopener noreferrer nofollow");
      }
    }
    if (tag === "IMG") {
      let src = (el.getAttribute("src") || "").trim();
      if (src.startsWith("attachment:")) {
        const bundle = attachments[decodeURIComponent(src.slice("attachment:".length))] || {};
        const mime = Object.keys(bundle).find((m) => /^image\/(png|jpeg|gif|webp)$/.test(m));
        src = mime ? `data:${mime};base64,${String(bundle[mime]).replace(/\s/g, "")}` : "";
      }
      if (SAFE_IMAGE.test(src)) el.setAttribute("src", src);
      else el.removeAttribute("src");
      el.setAttribute("referrerpolicy", "no-referrer");
    }
  }
}
