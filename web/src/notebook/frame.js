// Rich outputs (HTML, JavaScript, SVG) are shown only inside sandboxed frames:
// `<iframe src="/sandbox" sandbox="allow-scripts">`, never allow-same-origin,
// so what runs there has an opaque origin: no cookies, no access to this page.
// The frame asks for its content ("ready"), we post it the mime bundle, and it
// reports its height ("height") so the frame is sized to its content.
//
// The frame follows the page's theme: it starts in it (`/sandbox?theme=dark`)
// and gets {type: "theme", theme} when it changes (onOutputTheme()).
//
// Exports:
//   onOutputTheme()  make every frame follow the page's theme (call once).
//   createOutputFrame(bundle)  an iframe element [data-testid=output-frame]
//     showing `bundle` ({mime: data}, the rich mime types plus text/plain);
//     call `setOutputBundle(iframe, bundle)` to show new data in it, and
//     `releaseOutputFrame(iframe)` when the output goes away.
//
// Messages are handled by a dispatch table keyed by `type`. A message is
// accepted only if `event.source` is one of our frames' windows (their origin is
// "null", so the origin cannot tell them apart).

import { onTheme } from "../lib/theme.js";

/** @typedef {Record<string, unknown>} Bundle */

const pageTheme = () => (document.documentElement.dataset.theme === "dark" ? "dark" : "light");

/** @type {Map<HTMLIFrameElement, {bundle: Bundle, ready: boolean}>} */
const frames = new Map();

/** @type {Record<string, (frame: HTMLIFrameElement, data: any) => void>} */
const handlers = {
  ready(frame) {
    const state = frames.get(frame);
    if (!state) return;
    state.ready = true;
    send(frame);
  },
  height(frame, data) {
    const height = Number(data.height);
    if (Number.isFinite(height) && height >= 0) {
      frame.style.height = `${Math.min(Math.ceil(height), 20000)}px`;
    }
  },
};

/** @param {HTMLIFrameElement} frame */
function send(frame) {
  const state = frames.get(frame);
  if (!state || !state.ready || !frame.contentWindow) return;
  // The frame's origin is opaque ("null"), so "*" is the only target origin that
  // reaches it; the content is the output every collaborator already sees.
  frame.contentWindow.postMessage({ type: "render", bundle: state.bundle }, "*");
}

window.addEventListener("message", (event) => {
  if (!event.source || typeof event.data !== "object" || event.data === null) return;
  for (const frame of frames.keys()) {
    if (frame.contentWindow === event.source) {
      const handler = handlers[String(event.data.type)];
      if (handler) handler(frame, event.data);
      return;
    }
  }
});

/** @param {Bundle} bundle @returns {HTMLIFrameElement} */
export function createOutputFrame(bundle) {
  const frame = document.createElement("iframe");
  frame.dataset.testid = "output-frame";
  frame.className = "output-frame";
  frame.setAttribute("sandbox", "allow-scripts");
  frame.setAttribute("loading", "lazy");
  frame.setAttribute("referrerpolicy", "no-referrer");
  frame.title = "output";
  frame.src = `/sandbox?theme=${pageTheme()}`;
  frames.set(frame, { bundle, ready: false });
  return frame;
}

/** @param {HTMLIFrameElement} frame @param {Bundle} bundle */
export function setOutputBundle(frame, bundle) {
  const state = frames.get(frame);
  if (!state) return;
  state.bundle = bundle;
  send(frame);
}

export function onOutputTheme() {
  onTheme((theme) => {
    for (const [frame, state] of frames) {
      if (state.ready && frame.contentWindow) frame.contentWindow.postMessage({ type: "theme", theme }, "*");
    }
  });
}

/** Forget a frame whose output is gone (its messages are ignored from now on). */
/** @param {HTMLIFrameElement} frame */
export function releaseOutputFrame(frame) {
  frames.delete(frame);
  frame.remove();
}
