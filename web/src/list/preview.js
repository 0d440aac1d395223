// @ts-check
// Previewing a file that is not a notebook, in a dialog: images as images, text
// as text (the first 256 KB), anything else says there is no preview. The bytes
// come from the download endpoint (always an attachment there) and are shown
// here as an <img> of a blob or as text, so nothing in the file can run.
//
// Exports: previewable(entry) -> boolean; openPreview(entry, downloadUrl).
import { h, errorText } from "./dom.js";

const IMAGES = /** @type {Record<string, string>} */ ({
  png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", webp: "image/webp", svg: "image/svg+xml",
});
const MAX_BYTES = 20 * 1024 * 1024; // larger files: download them instead
const MAX_TEXT = 256 * 1024;

/** @param {string} name */
const extension = (name) => (name.includes(".") ? name.split(".").pop()?.toLowerCase() || "" : "");

/** @param {{type: string, size: number | null}} entry */
export function previewable(entry) {
  return entry.type === "file" && (entry.size ?? 0) <= MAX_BYTES;
}

/**
 * @param {{name: string, path: string, size: number | null}} entry
 * @param {string} url where the file downloads from
 */
export function openPreview(entry, url) {
  const body = h("div", { class: "preview-body", testid: "preview-body" }, h("p", { class: "muted" }, "Loading…"));
  /** @type {string | null} */
  let objectUrl = null;
  const dialog = /** @type {HTMLDialogElement} */ (h("dialog", {
    class: "modal preview-dialog", testid: "preview-dialog", "aria-labelledby": "preview-title",
  },
  h("div", { class: "modal-head" },
    h("h2", { id: "preview-title" }, entry.name),
    h("button", { type: "button", class: "btn btn-quiet", testid: "preview-close", "aria-label": "Close", onclick: () => dialog.close() }, "✕")),
  body,
  h("div", { class: "modal-actions" },
    h("a", { class: "btn", href: url, download: entry.name, testid: "preview-download" }, "Download"))));
  dialog.addEventListener("close", () => {
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    dialog.remove();
  });
  document.body.append(dialog);
  dialog.showModal();

  void (async () => {
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      const bytes = new Uint8Array(await response.arrayBuffer());
      const image = IMAGES[extension(entry.name)];
      if (image) {
        objectUrl = URL.createObjectURL(new Blob([bytes], { type: image }));
        body.replaceChildren(h("img", { class: "preview-image", testid: "preview-image", src: objectUrl, alt: entry.name }));
        return;
      }
      const head = bytes.subarray(0, MAX_TEXT);
      if (head.subarray(0, 8192).includes(0)) {
        body.replaceChildren(h("p", { class: "muted", testid: "preview-none" }, "There is no preview for this kind of file: download it."));
        return;
      }
      const text = new TextDecoder("utf-8", { fatal: false }).decode(head);
      body.replaceChildren(h("pre", { class: "preview-text", testid: "preview-text" }, text));
      if (bytes.length > MAX_TEXT) {
        body.append(h("p", { class: "muted small", testid: "preview-cut" }, `Showing the first ${MAX_TEXT / 1024} KB of ${Math.round(bytes.length / 1024)} KB.`));
      }
    } catch (e) {
      body.replaceChildren(h("p", { class: "alert" }, `The file cannot be shown: ${errorText(e)}`));
    }
  })();
}
