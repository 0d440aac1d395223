// @ts-check
// The notebook's live connection: y-websocket to `ws(s)://<host>/api/rooms/<id>`
// (same origin; the session cookie authenticates), and what the page tells people
// about it. The indicator reads `connecting`, `connected` (synced), `reconnecting`,
// `offline` or `reload needed`.
//
// Edits made while the socket is down stay in the local Y.Doc and are merged when
// it comes back (y-websocket's sync step 1/2 on reconnect). When the browser says
// it is offline we close the socket ourselves and reopen it when it is back.
//
// Close codes from the server (README's WebSocket section): 4409 reload needed
// (our copy cannot be merged), 4401 logged out, 4403 access removed, 4404
// notebook deleted. y-websocket stops retrying on 4400-4499 and emits `closed`.
// A refused upgrade (HTTP 401/403/404) reaches the browser as a bare 1006, so
// after a few failed attempts we ask the REST API why.
//
// Auth messages (type 2) are handled here, by subtype: 0 permission denied (a
// change of ours was refused; the reason follows), 1 our role, as JSON
// `{"role": "viewer" | "editor" | "owner"}`, sent at join and on every change.
// A refused change and 4409 both mean our copy holds text the server does not
// have: `onResync(reason)` is called (once) instead of showing a close message.
//
// Exports: connect({doc, notebookId, indicator, messageBox, onSynced, onRole, onResync,
//   onStatus?}) -> {provider, awareness}.
import { WebsocketProvider, messageAuth } from "y-websocket";
import * as decoding from "lib0/decoding";
import { h } from "../lib/dom.js";

const AUTH_PERMISSION_DENIED = 0;
const AUTH_ROLE = 1;
const ROLES = ["viewer", "editor", "owner"];

/** @type {Record<number, {text: string, reload: boolean}>} */
const CLOSED = {
  4409: { text: "This notebook changed in a way your copy cannot merge. Reload to continue; edits you made in the last moments may need to be redone.", reload: true },
  4401: { text: "You have been logged out. Log in again to keep working.", reload: false },
  4403: { text: "Your access to this notebook was removed.", reload: false },
  4404: { text: "This notebook was deleted.", reload: false },
};

/**
 * @param {{doc: import("yjs").Doc, notebookId: string, indicator: HTMLElement,
 *   messageBox: HTMLElement, onSynced: () => void,
 *   onRole: (role: "viewer" | "editor" | "owner") => void,
 *   onResync: (reason: string) => void,
 *   onStatus?: (state: string) => void}} options
 */
export function connect(options) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const provider = new WebsocketProvider(`${scheme}//${location.host}/api/rooms`, options.notebookId, options.doc, {
    disableBc: true, // every copy goes through the server (which may answer 4409)
    maxBackoffTime: 5000,
  });
  let everSynced = false;
  let failures = 0;
  let closedFor = 0;
  /** @param {string} state @param {string} [reason] */
  const show = (state, reason) => {
    options.indicator.textContent = state;
    options.indicator.dataset.state = state.replace(" ", "-");
    if (reason) options.indicator.dataset.reason = reason;
    else delete options.indicator.dataset.reason;
    options.onStatus?.(state);
  };
  /** @param {string} text @param {boolean} reload @param {string} [link] */
  const explain = (text, reload, link) => {
    options.messageBox.replaceChildren(
      h("div", { class: "connection-message", testid: "connection-message", role: "alert" },
        h("span", null, text),
        reload ? h("button", { type: "button", class: "btn btn-primary", testid: "reload", onclick: () => location.reload() }, "Reload") : null,
        link ? h("a", { class: "btn", href: link }, "Log in") : null),
    );
  };
  /** @param {number} code */
  const stop = (code) => {
    closedFor = code;
    if (code === 4409) {
      provider.disconnect();
      show("reload needed", String(code));
      options.onResync("your copy of the notebook could not be merged with the server's");
      return;
    }
    const what = CLOSED[code] || { text: `The connection was closed (${code}).`, reload: true };
    provider.disconnect();
    show(code === 4409 ? "reload needed" : "offline", String(code));
    explain(what.text, what.reload, code === 4401 ? `/login?next=${encodeURIComponent(location.pathname + location.search)}` : undefined);
  };

  /** @type {Record<number, (decoder: decoding.Decoder) => void>} */
  const auth = {
    [AUTH_PERMISSION_DENIED](decoder) {
      const reason = decoding.readVarString(decoder);
      if (closedFor) return;
      closedFor = 403;
      provider.disconnect();
      show("reload needed", "refused");
      options.onResync(reason);
    },
    [AUTH_ROLE](decoder) {
      let role = null;
      try {
        role = JSON.parse(decoding.readVarString(decoder)).role;
      } catch {
        role = null;
      }
      if (ROLES.includes(role)) options.onRole(role);
      else console.warn("collab-server: unknown role message", role);
    },
  };
  provider.messageHandlers[messageAuth] = (_encoder, decoder) => {
    const handle = auth[decoding.readVarUint(decoder)];
    if (handle) handle(decoder);
  };

  provider.on("status", ({ status }) => {
    if (closedFor) return;
    if (status === "connected") failures = 0;
    if (status === "connecting") show(navigator.onLine ? (everSynced ? "reconnecting" : "connecting") : "offline");
    if (status === "disconnected") show(navigator.onLine ? "reconnecting" : "offline");
  });
  provider.on("sync", (synced) => {
    if (closedFor) return;
    if (synced) {
      everSynced = true;
      failures = 0;
      options.messageBox.replaceChildren();
      show("connected");
      options.onSynced();
    }
  });
  provider.on("closed", ({ code }) => stop(code));
  provider.on("connection-close", (event) => {
    if (closedFor || !event) return;
    if (event.code === 1006 || event.code === 1002 || event.code === 1011) {
      failures += 1;
      if (failures === 3) void whyRefused();
    }
  });

  // The upgrade may have been refused before any socket existed: ask why.
  const whyRefused = async () => {
    let status = 0;
    try {
      const response = await fetch(`/api/notebooks/${options.notebookId}/role`, { credentials: "same-origin" });
      status = response.status;
    } catch {
      return; // the server is unreachable: keep retrying
    }
    if (status === 401) stop(4401);
    else if (status === 404) stop(4403);
    else if (status === 403) {
      show("offline", "403");
      explain("The server refused this page's connection (origin not allowed).", false);
      closedFor = 403;
      provider.disconnect();
    }
  };

  window.addEventListener("offline", () => {
    if (closedFor) return;
    show("offline");
    provider.disconnect();
  });
  window.addEventListener("online", () => {
    if (closedFor) return;
    show(everSynced ? "reconnecting" : "connecting");
    provider.connect();
  });
  show("connecting");
  return { provider, awareness: provider.awareness };
}
