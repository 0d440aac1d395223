// @ts-check
// The REST API from the browser: JSON in and out, with the session cookie and
// the `_xsrf` cookie echoed in `X-XSRFToken` on every state change (Tornado's
// XSRF check), and failures turned into `ApiError`s carrying the server's own
// message (`{"status", "error", "message"}`).
//
// Exports:
//   ApiError               Error with `status` (HTTP status, 0 = unreachable) and
//                          the server's `message`.
//   xsrfToken()            the `_xsrf` cookie's value ("" if none).
//   request(method, url, body?)  one call; resolves with the parsed JSON (null for
//                          an empty body such as 204); rejects with ApiError. `body`
//                          is sent as JSON, or as is when it is a Blob/File.
//   api.get/post/put/patch/del(url, body?)  shorthands for `request`.
//
// A 401 means the session ended: the promise rejects and the page is sent to
// /login (coming back here afterwards).

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   */
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/** @returns {string} the `_xsrf` cookie Tornado sets on every page. */
export function xsrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

/**
 * @param {string} method
 * @param {string} url
 * @param {unknown} [body]
 * @returns {Promise<unknown>} the parsed JSON, whose shape the caller knows
 */
export async function request(method, url, body) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") headers["X-XSRFToken"] = xsrfToken();
  /** @type {BodyInit | undefined} */
  let payload;
  if (body instanceof Blob) {
    payload = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body: payload, credentials: "same-origin" });
  } catch {
    throw new ApiError(0, "The server cannot be reached; check your connection and try again.");
  }
  const text = await response.text();
  /** @type {unknown} */
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.status === 401) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new ApiError(401, "Your session has ended; log in again.");
  }
  if (!response.ok) {
    const said = data && typeof data === "object" && "message" in data ? data.message : null;
    const message = (typeof said === "string" && said) || `${response.status} ${response.statusText || "error"}`;
    throw new ApiError(response.status, message);
  }
  return data;
}

export const api = {
  /** @param {string} url */
  get: (url) => request("GET", url),
  /** @param {string} url @param {unknown} [body] */
  post: (url, body) => request("POST", url, body ?? {}),
  /** @param {string} url @param {unknown} [body] */
  put: (url, body) => request("PUT", url, body),
  /** @param {string} url @param {unknown} [body] */
  patch: (url, body) => request("PATCH", url, body),
  /** @param {string} url */
  del: (url) => request("DELETE", url),
};
