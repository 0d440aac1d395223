// @ts-check
// The page's starting data: the JSON block `<script type="application/json"
// id="boot">` the server writes into every app page (see web/README.md).
//
// Exports:
//   readBoot()  the parsed object, read once and cached:
//               `{user: {name, admin, tutor, identity: {username, name,
//               display_name, initials, color, role}}, notebook?: {id, path, role}}`.
//               Throws if the block is missing or not JSON (a broken shell).

/**
 * @typedef {{username: string, name: string, display_name: string, initials: string, color: string, role: string}} Identity
 * @typedef {{name: string, admin: boolean, tutor: boolean, identity: Identity}} BootUser
 * @typedef {{id: string, path: string, role: "viewer" | "editor" | "owner"}} BootNotebook
 * @typedef {{user: BootUser, notebook?: BootNotebook}} Boot
 */

/** @type {Boot | null} */
let cached = null;

/** @returns {Boot} */
export function readBoot() {
  if (cached) return cached;
  const block = document.getElementById("boot");
  if (!block || !block.textContent) throw new Error("this page has no #boot data");
  cached = /** @type {Boot} */ (JSON.parse(block.textContent));
  return cached;
}
