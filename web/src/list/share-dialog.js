// @ts-check
// The share dialog of one notebook (owners only): people and groups with a
// role, and share links with an expiry. Like Google Drive's: add someone,
// change or remove their access, create a link (its address is shown once).
import "./share-dialog.css";
import { h, fill, errorText } from "./dom.js";
import { api } from "../lib/api.js";
import { avatar } from "./people.js";
import { icon } from "./icons.js";
import { relativeTime, exactTime } from "./time.js";

/**
 * @typedef {{id: number, kind: "user" | "group", name: string, role: string,
 *   created_by: string, created_at: number}} Share
 * @typedef {{id: number, prefix: string, role: string, created_by: string,
 *   created_at: number, expires_at: number | null, revoked: boolean, users: number}} Link
 */

const ROLES = [
  ["viewer", "Viewer"],
  ["editor", "Editor"],
  ["owner", "Owner"],
];

const EXPIRY = [
  ["3600", "1 hour"],
  ["86400", "1 day"],
  ["604800", "1 week"],
  ["2592000", "30 days"],
  ["never", "Never"],
];

/**
 * A <select> of choices.
 * @param {string[][]} choices [value, label] pairs
 * @param {string} value
 * @param {import("./dom.js").Props} props
 */
function select(choices, value, props) {
  return h(
    "select",
    props,
    choices.map(([v, label]) => h("option", { value: v, selected: v === value }, label)),
  );
}

/**
 * Open the share dialog for a notebook.
 * @param {{id: string, path: string}} notebook
 * @param {string} me the logged-in user's name
 */
export function openShareDialog(notebook, me) {
  const base = `/api/notebooks/${notebook.id}`;
  const owner = notebook.path.split("/")[0];
  const fileName = notebook.path.split("/").pop() || notebook.path;

  const error = h("p", { class: "alert", role: "alert", testid: "share-error", hidden: true });
  const showError = (/** @type {unknown} */ e) => {
    error.hidden = !e;
    error.textContent = e ? errorText(e) : "";
  };

  // -- add a person or a group
  const kind = select(
    [
      ["user", "Person"],
      ["group", "Group"],
    ],
    "user",
    { testid: "share-kind", "aria-label": "Share with a person or a group" },
  );
  const name = h("input", {
    type: "text",
    testid: "share-name",
    placeholder: "Username",
    "aria-label": "Username or group name",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  kind.addEventListener("change", () => {
    name.placeholder = kind.value === "group" ? "Group name" : "Username";
  });
  const role = select(ROLES.slice(0, 2), "viewer", { testid: "share-role", "aria-label": "Role" });
  const add = h("button", { type: "submit", class: "btn btn-primary", testid: "share-add" }, "Share");
  const addForm = h(
    "form",
    {
      class: "share-add",
      onsubmit: async (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        const who = name.value.trim();
        if (!who) return;
        add.disabled = true;
        try {
          await api.post(`${base}/shares`, { [kind.value]: who, role: role.value });
          name.value = "";
          showError(null);
          await reload();
        } catch (e) {
          showError(e);
        } finally {
          add.disabled = false;
          name.focus();
        }
      },
    },
    kind,
    name,
    role,
    add,
  );

  const shareList = h("ul", { class: "share-list", testid: "share-list", "aria-label": "Who has access" });

  // -- links
  const linkRole = select(ROLES.slice(0, 2), "viewer", { testid: "link-role", "aria-label": "Link role" });
  const linkExpiry = select(EXPIRY, "604800", { testid: "link-expiry", "aria-label": "Link expires after" });
  const createLink = h("button", { type: "submit", class: "btn", testid: "link-create" }, icon("link"), "Create link");
  const newLink = h("div", { class: "new-link", testid: "new-link", hidden: true });
  const linkForm = h(
    "form",
    {
      class: "share-add",
      onsubmit: async (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        createLink.disabled = true;
        try {
          const expires_in = linkExpiry.value === "never" ? null : Number(linkExpiry.value);
          const link = /** @type {Link & {url: string}} */ (await api.post(`${base}/links`, { role: linkRole.value, expires_in }));
          showNewLink(new URL(link.url, location.origin).href, link.role);
          showError(null);
          await reload();
        } catch (e) {
          showError(e);
        } finally {
          createLink.disabled = false;
        }
      },
    },
    h("label", { class: "inline-label" }, "Role", linkRole),
    h("label", { class: "inline-label" }, "Expires after", linkExpiry),
    createLink,
  );
  const linkHelp = h(
    "p",
    { class: "muted small help" },
    "Anyone who opens the link while logged in gets that role until the link expires or you revoke it.",
  );
  const linkList = h("ul", { class: "share-list", testid: "link-list", "aria-label": "Share links" });

  /**
   * @param {string} url
   * @param {string} linkRoleName
   */
  function showNewLink(url, linkRoleName) {
    const field = h("input", {
      type: "text",
      readonly: true,
      value: url,
      testid: "link-url",
      "aria-label": "The new link",
      onfocus: () => field.select(),
    });
    const copy = h("button", { type: "button", class: "btn", testid: "link-copy" }, "Copy");
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(url);
      } catch {
        // No clipboard API on plain http: copy the selected text the old way.
        field.select();
        document.execCommand("copy");
      }
      copy.textContent = "Copied";
      setTimeout(() => (copy.textContent = "Copy"), 2000);
    });
    fill(
      newLink,
      h("div", { class: "new-link-row" }, field, copy),
      h(
        "p",
        { class: "muted small" },
        `Copy it now: for safety the full link (${linkRoleName} access) is shown only once.`,
      ),
    );
    newLink.hidden = false;
    field.focus();
  }

  /** @param {Share} share */
  function shareRow(share) {
    const change = select(ROLES, share.role, {
      testid: "share-entry-role",
      "aria-label": `Role of ${share.name}`,
      onchange: async () => {
        try {
          await api.post(`${base}/shares`, { [share.kind]: share.name, role: change.value });
          showError(null);
        } catch (e) {
          showError(e);
        }
        await reload();
      },
    });
    return h(
      "li",
      { testid: "share-entry", dataset: { name: share.name, kind: share.kind, role: share.role } },
      share.kind === "group" ? h("span", { class: "avatar avatar-m avatar-group" }, icon("group")) : avatar(share.name, { size: "m" }),
      h(
        "span",
        { class: "who" },
        h("span", { class: "who-name" }, share.name),
        h("span", { class: "muted small" }, share.kind === "group" ? "group" : "person"),
      ),
      change,
      h(
        "button",
        {
          type: "button",
          class: "btn btn-quiet",
          testid: "unshare",
          "aria-label": `Remove ${share.name}`,
          onclick: async () => {
            try {
              await api.del(`${base}/shares/${share.id}`);
              showError(null);
            } catch (e) {
              showError(e);
            }
            await reload();
          },
        },
        "Remove",
      ),
    );
  }

  /** @param {Link} link */
  function linkRow(link) {
    const now = Date.now() / 1000;
    const expired = link.expires_at !== null && link.expires_at <= now;
    const expiry =
      link.expires_at === null
        ? "never expires"
        : expired
          ? `expired ${relativeTime(link.expires_at, now)}`
          : `expires ${relativeTime(link.expires_at, now)}`;
    const uses =
      link.users === 0 ? "not opened yet" : link.users === 1 ? "opened by 1 person" : `opened by ${link.users} people`;
    return h(
      "li",
      { testid: "link-row", dataset: { linkId: String(link.id), role: link.role }, class: expired ? "expired" : null },
      h("span", { class: "avatar avatar-m avatar-group" }, icon("link")),
      h(
        "span",
        { class: "who" },
        h("span", { class: "who-name" }, h("code", null, `/share/${link.prefix}…`), " ", h("span", { class: "tag" }, link.role)),
        h(
          "span",
          { class: "muted small", title: link.expires_at ? exactTime(link.expires_at) : "" },
          `${uses} · ${expiry} · made ${relativeTime(link.created_at, now)} by ${link.created_by}`,
        ),
      ),
      h(
        "button",
        {
          type: "button",
          class: "btn btn-quiet",
          testid: "link-revoke",
          "aria-label": `Revoke link ${link.prefix}`,
          onclick: async () => {
            try {
              await api.del(`${base}/links/${link.id}`);
              showError(null);
            } catch (e) {
              showError(e);
            }
            await reload();
          },
        },
        "Revoke",
      ),
    );
  }

  async function reload() {
    try {
      const data = /** @type {{shares: Share[], links: Link[]}} */ (await api.get(`${base}/shares`));
      const ownerRow = h(
        "li",
        { testid: "share-owner", dataset: { name: owner } },
        avatar(owner, { size: "m" }),
        h(
          "span",
          { class: "who" },
          h("span", { class: "who-name" }, owner, owner === me ? " (you)" : ""),
          h("span", { class: "muted small" }, "owns the folder"),
        ),
        h("span", { class: "role-fixed" }, "Owner"),
      );
      fill(shareList, ownerRow, data.shares.map(shareRow));
      const links = data.links.filter((link) => !link.revoked);
      fill(
        linkList,
        links.length
          ? links.map(linkRow)
          : h("li", { class: "empty" }, "No links yet."),
      );
    } catch (e) {
      showError(e);
    }
  }

  const whose = owner === me ? "you" : owner;
  const dialog = h(
    "dialog",
    { class: "modal share-dialog", testid: "share-dialog", "aria-labelledby": "share-title", dataset: { notebookId: notebook.id } },
    h(
      "div",
      { class: "modal-head" },
      h("h2", { id: "share-title" }, "Share ", h("span", { class: "file-name" }, fileName)),
      h(
        "button",
        { type: "button", class: "btn btn-quiet", testid: "share-close", "aria-label": "Close", onclick: () => dialog.close() },
        "✕",
      ),
    ),
    error,
    addForm,
    h(
      "p",
      { class: "note", testid: "share-note" },
      h("strong", null, "Editors run code as the owner. "),
      `Code an editor runs uses ${whose === "you" ? "your" : `${owner}'s`} account, so it can read and change ${
        whose === "you" ? "your" : "their"
      } files. Give editor access only to people you trust; viewers can watch but not change or run anything.`,
    ),
    h("h3", null, "People and groups with access"),
    shareList,
    h("h3", null, "Share links"),
    linkForm,
    linkHelp,
    newLink,
    linkList,
    h(
      "div",
      { class: "modal-actions" },
      h("button", { type: "button", class: "btn btn-primary", onclick: () => dialog.close() }, "Done"),
    ),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  name.focus();
  reload();
  return dialog;
}
