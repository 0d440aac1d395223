"""Hostile REST requests against a real server: paths, bodies, query strings, headers.

Every endpoint of the URL table is called with random and adversarial
paths (unicode, percent-encoded traversal, NUL, names longer than the
filesystem allows), JSON bodies (wrong types, huge, deeply nested, invalid
UTF-8, NaN), query strings and headers (bad ``Authorization``, huge cookies,
forged session cookies, bad ``X-XSRFToken``, odd ``Content-Type``), as one of:

- ``mallory``, a logged-in user with no role on anything but her own folder;
- ``vic``, a viewer of Alice's notebook;
- ``alice``, an owner, playing in her own folder.

Properties:

- the server never answers 5xx; every API error is the JSON
  ``{"status", "error", "message"}`` with the response's status;
- nothing outside the actor's own folder is created or changed: the root
  folder, the checkpoints, and every table of the three databases (users,
  tokens, sessions, groups, shares, links, notebook ids, stored updates,
  executions) are compared before and after each request, minus the actor's
  own folder and its notebooks (for the viewer the stored updates are left
  out, because raising a hand is allowed to write to the document; Alice's
  notebook content is compared instead);
- the server stays responsive: another user's request is answered after
  every example.

Requests that would start a kernel (an owner's well-formed run request) are
skipped: kernels are exercised by ``test_authorization_matrix``.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st

from tests.conftest import Server

from .strategies import json_values, texts
from .support import (
    database_rows,
    diff,
    file_tree,
    fuzz,
    json_error,
    small_notebook,
)

CHECKPOINT = "20240101T000000.000000.ipynb"


@dataclass
class World:
    server: Server
    notebook_id: str  # alice/nb.ipynb: Bob edits, Vic views
    bobs_id: str  # bob/private.ipynb: nobody else
    share_id: int
    link_id: int
    playground_id: str = ""  # alice/play.ipynb: what Alice may wreck as the actor
    own_ids: dict[str, set[str]] = field(default_factory=dict)  # actor -> ids ever in their folder


@pytest.fixture
async def world(server: Server) -> World:
    notebook_id = await server.create_notebook("alice/nb.ipynb", small_notebook(), editors=("bob",))
    share = await server.share(notebook_id, "vic", "viewer")
    link = await server.api("POST", f"/api/notebooks/{notebook_id}/links", {"role": "viewer"})
    assert link.code == 201
    bobs_id = await server.create_notebook("bob/private.ipynb", small_notebook(), editors=())
    for user in ("mallory", "vic", "alice", "bob"):
        assert (await server.api("GET", "/api/contents/", user=user)).code == 200  # homes exist
    checkpoints = server.services.settings.room.checkpoint_dir / notebook_id
    checkpoints.mkdir(parents=True)
    (checkpoints / CHECKPOINT).write_bytes(json.dumps(small_notebook()).encode())
    world = World(server, notebook_id, bobs_id, share["id"], json.loads(link.body)["id"])
    await ensure_playground(world)
    return world


async def ensure_playground(world: World) -> None:
    """(Re)create alice/play.ipynb, which Alice may have renamed or deleted as the actor."""
    response = await world.server.api("GET", "/api/contents/alice/play.ipynb")
    if response.code == 200:
        world.playground_id = json.loads(response.body)["id"]
        return
    world.playground_id = await world.server.create_notebook(
        "alice/play.ipynb", small_notebook(), editors=()
    )


# ---- requests ------------------------------------------------------------------------------

PRE_ENCODED = [
    "%2e%2e",
    "..",
    ".",
    "%2F",
    "%00",
    "a%00b",
    "%ff",
    "%ED%A0%80",
    "%5C",
    "~",
    "%20",
    ".hidden",
    "%2e%2e%2f%2e%2e",
    "%252e%252e",
    "con",
    "x.ipynb",
    "%E2%80%AE.ipynb",
]

segments = st.one_of(
    st.sampled_from(PRE_ENCODED),
    st.text(min_size=0, max_size=20).map(lambda t: urllib.parse.quote(t, safe="")),
    st.sampled_from([100, 250, 256, 300]).map(lambda n: "n" * n),
    st.sampled_from([86, 128]).map(lambda n: urllib.parse.quote("é" * n)),  # 172 / 256 bytes
)
random_paths = st.lists(segments, min_size=0, max_size=6).map("/".join)


@st.composite
def file_paths(draw: st.DrawFn, actor: str, world: World) -> str:
    known = [
        "alice/nb.ipynb",
        "alice",
        "bob/private.ipynb",
        "bob",
        f"{actor}",
        f"{actor}/new.ipynb",
        f"{actor}/dir",
        "alice/play.ipynb",
        "",
    ]
    if actor == "alice":
        known.remove("alice/nb.ipynb")
    prefix = draw(st.sampled_from(known + ["", "../", "/", f"{actor}/", "alice/", "bob/"]))
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return draw(st.sampled_from(known))
    rest = draw(random_paths)
    return (prefix.rstrip("/") + "/" + rest) if prefix else rest


def notebook_ids(actor: str, world: World) -> st.SearchStrategy[str]:
    mine = world.playground_id if actor == "alice" else world.notebook_id
    return st.sampled_from([mine, world.bobs_id, "0" * 32, "f" * 32]) | st.text(
        "0123456789abcdef", min_size=32, max_size=32
    )


numbers = st.one_of(
    st.integers(0, 10).map(str),
    st.sampled_from([2**31, 2**63 - 1, 2**63, 2**64, 10**30]).map(str),
)

TEMPLATES = [
    "/api/user",
    "/api/contents/{path}",
    "/api/upload/{path}",
    "/api/notebooks/{id}",
    "/api/notebooks/{id}/checkpoints",
    "/api/notebooks/{id}/checkpoints/{checkpoint}",
    "/api/notebooks/{id}/role",
    "/api/shared",
    "/api/notebooks/{id}/shares",
    "/api/notebooks/{id}/shares/{share}",
    "/api/notebooks/{id}/links",
    "/api/notebooks/{id}/links/{link}",
    "/api/notebooks/{id}/execute",
    "/api/notebooks/{id}/kernel",
    "/api/notebooks/{id}/kernel/{action}",
    "/api/notebooks/{id}/input",
    "/api/notebooks/{id}/history",
    "/api/notebooks/{id}/history/export",
    "/api/notebooks/{id}/history/rebuild",
    "/api/history",
    "/api/presence",
    "/api/notebooks/{id}/hand",
    "/api/notebooks/{id}/hand/{segment}",
    "/api/tutor/students",
    "/api/users",
    "/api/users/{segment}",
    "/api/groups",
    "/api/groups/{segment}",
    "/api/groups/{segment}/members/{segment2}",
    "/api/rooms/{id}",
    "/api/{random}",
    "/{random}",
]


@st.composite
def urls(draw: st.DrawFn, actor: str, world: World) -> str:
    template = draw(st.sampled_from(TEMPLATES))
    values = {
        "path": draw(file_paths(actor, world)),
        "id": draw(notebook_ids(actor, world)),
        "checkpoint": draw(
            st.sampled_from([CHECKPOINT, "1.ipynb", "T.ipynb", "0" * 300 + ".ipynb"])
        ),
        "share": draw(st.sampled_from([str(world.share_id)]) | numbers),
        "link": draw(st.sampled_from([str(world.link_id)]) | numbers),
        "action": draw(st.sampled_from(["interrupt", "restart", "shutdown", "explode"])),
        "segment": draw(
            st.sampled_from(["alice", "vic", "mallory", "admins", "tutors"]) | segments
        ),
        "segment2": draw(st.sampled_from(["alice", "vic", "mallory"]) | segments),
        "random": draw(random_paths),
    }
    url = template.format(**values)
    query = draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "since",
                    "until",
                    "limit",
                    "cursor",
                    "q",
                    "user",
                    "status",
                    "order",
                    "format",
                    "download",
                    "overwrite",
                    "token",
                    "_xsrf",
                ]
            ),
            st.one_of(
                st.sampled_from(
                    ["nan", "inf", "-1", "0", "1e400", "10" * 20, "oldest", "json", "csv", "1"]
                ),
                st.text(max_size=30),
            ),
            max_size=3,
        )
    )
    if query:
        url += "?" + urllib.parse.urlencode(query)
    return url


def wrong(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return value | json_values


@st.composite
def bodies(draw: st.DrawFn, actor: str) -> tuple[str, bytes | None]:
    kind = draw(
        st.sampled_from(
            [
                "none",
                "json",
                "shaped",
                "shaped",
                "shaped",
                "deep",
                "huge",
                "invalid UTF-8",
                "not JSON",
                "notebook",
            ]
        )
    )
    if kind == "none":
        return kind, None
    if kind == "json":
        return kind, json.dumps(draw(json_values)).encode()
    if kind == "shaped":
        shape = draw(
            st.sampled_from(
                [
                    {
                        "type": wrong(st.sampled_from(["notebook", "directory"])),
                        "content": json_values | st.just(small_notebook()),
                    },
                    {
                        "path": wrong(
                            st.sampled_from(
                                [
                                    f"{actor}/moved.ipynb",
                                    "bob/stolen.ipynb",
                                    "../x.ipynb",
                                    "alice/" + "m" * 300,
                                ]
                            )
                        )
                    },
                    {
                        "user": wrong(st.sampled_from(["mallory", "vic", "alice", "nobody"])),
                        "role": wrong(st.sampled_from(["viewer", "editor", "owner", "admin"])),
                    },
                    {
                        "group": wrong(st.sampled_from(["tutors", "nobody"])),
                        "role": wrong(st.just("viewer")),
                    },
                    {
                        "role": wrong(st.sampled_from(["viewer", "editor"])),
                        "expires_in": wrong(st.sampled_from([60, 0, -1, 1e308, 10**20])),
                    },
                    {"cell_ids": wrong(st.lists(texts, max_size=3))},
                    {"execution_id": wrong(texts), "value": wrong(texts)},
                    {
                        "execution_ids": wrong(st.lists(texts, max_size=3)),
                        "path": wrong(
                            st.sampled_from(
                                [f"{actor}/r.ipynb", "bob/r.ipynb", "alice/" + "r" * 300 + ".ipynb"]
                            )
                        ),
                    },
                    {
                        "name": wrong(st.sampled_from(["eve", "alice", ""])),
                        "admin": wrong(st.booleans()),
                    },
                    {"admin": wrong(st.booleans())},
                    {"message": wrong(st.text(max_size=600))},
                ]
            )
        )
        body = {
            key: draw(value)
            for key, value in shape.items()
            if draw(st.booleans()) or len(shape) == 1
        }
        return kind, json.dumps(body).encode()
    if kind == "deep":
        depth = draw(st.sampled_from([10, 400, 1000, 3000, 50_000]))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"path":', "}")]))
        inner = "1" if closer == "}" else ""
        return f"nested {depth} deep", (opener * depth + inner + closer * depth).encode()
    if kind == "huge":
        size = draw(st.sampled_from([64 * 1024, 1024 * 1024]))
        return f"{size}-byte string", json.dumps(
            {"path": "x" * size, "message": "y" * size}
        ).encode()
    if kind == "invalid UTF-8":
        return kind, b'{"path": "\xff\xfe", "type": "notebook"}'
    if kind == "not JSON":
        return kind, draw(
            st.sampled_from([b"{", b"NaN", b'{"a": NaN}', b"a=1&b=%00", b"\x00" * 16])
        )
    return kind, json.dumps(small_notebook()).encode()


header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


@st.composite
def headers(draw: st.DrawFn, token: str) -> tuple[bool, dict[str, str]]:
    """(uses the actor's token, extra headers)."""
    out: dict[str, str] = {}
    auth = draw(
        st.sampled_from(["token"] * 5 + ["none", "garbage", "bearer", "long", "empty", "extra"])
    )
    if auth != "token":
        out["Authorization"] = {
            "none": "",
            "garbage": "token " + draw(header_text),
            "bearer": f"Bearer {token}",
            "long": "token " + "x" * 8000,
            "empty": "token ",
            "extra": f"token {token} {token}",
        }[auth]
        if auth == "none":
            del out["Authorization"]
    if draw(st.booleans()):
        cookie = draw(
            st.sampled_from(
                [
                    "collab-session=" + "x" * 40,
                    "collab-session=2|1:0|10:1700000000|14:collab-session|8:YWxpY2U=|" + "0" * 64,
                    "_xsrf=2|00000000|" + "0" * 32 + "|1700000000",
                    "a=" + "b" * 16_000,
                    "; ".join(f"c{i}=v" for i in range(500)),
                ]
            )
        )
        out["Cookie"] = cookie
    if draw(st.booleans()):
        out["X-XSRFToken"] = draw(st.sampled_from(["", "x", "2|00|00|1", "z" * 4000]) | header_text)
    if draw(st.booleans()):
        out["Content-Type"] = draw(
            st.sampled_from(
                [
                    "application/json",
                    "text/plain",
                    "application/x-www-form-urlencoded",
                    "multipart/form-data; boundary=xyz",
                    "multipart/form-data",
                    "application/json; charset=latin-1",
                ]
            )
            | header_text
        )
    return auth == "token", out


# ---- properties ------------------------------------------------------------------------------


def snapshot(world: World, actor: str) -> dict[str, Any]:
    """What the actor must not change: everything outside their own folder."""
    settings = world.server.services.settings
    tables = database_rows(world.server)
    notebooks = tables.pop("db.notebooks")
    own_ids = world.own_ids.setdefault(actor, set())
    own_ids |= {row[0] for row in notebooks if str(row[1]).startswith(f"{actor}/")}
    tables["db.notebooks"] = [row for row in notebooks if not str(row[1]).startswith(f"{actor}/")]
    for name in ("store.ystore_documents", "store.ystore_updates"):
        column = 0 if name.endswith("documents") else 1
        tables[name] = [row for row in tables[name] if row[column] not in own_ids]
    if actor != "mallory":
        # Only the stranger is held to the whole database; the others may legitimately write
        # what their role allows (a hand in a document, shares of their own notebooks).
        for name in list(tables):
            if name.startswith("store.") or (
                actor == "alice"
                and name in ("db.shares", "db.share_links", "db.link_grants", "db.auth_epoch")
            ):
                del tables[name]
    state: dict[str, Any] = {f"table {k}": v for k, v in tables.items()}
    state.update(
        {f"file {k}": v for k, v in file_tree(settings.root_dir, exclude_top=actor).items()}
    )
    state.update({f"checkpoint {k}": v for k, v in file_tree(settings.room.checkpoint_dir).items()})
    return state




def starts_a_kernel(actor: str, method: str, url: str, body: bytes | None, world: World) -> bool:
    if actor != "alice" or method != "POST" or not url.split("?")[0].endswith("/execute"):
        return False
    try:
        cell_ids = json.loads(body or b"{}").get("cell_ids")
    except (ValueError, AttributeError, RecursionError):
        return False
    return (
        isinstance(cell_ids, list) and bool(cell_ids) and all(isinstance(c, str) for c in cell_ids)
    )


async def notebook_content(world: World) -> bytes:
    response = await world.server.api("GET", f"/api/notebooks/{world.notebook_id}")
    assert response.code == 200
    return bytes(response.body)


@fuzz(max_examples=250)
@given(data=st.data())
async def test_hostile_requests_get_json_errors_and_change_nothing(
    world: World, data: st.DataObject
) -> None:
    server = world.server
    actor = data.draw(st.sampled_from(["mallory", "vic", "alice"]), label="actor")
    if actor == "alice":
        await ensure_playground(world)
    method = data.draw(
        st.sampled_from(["GET", "GET", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "HEAD"]),
        label="method",
    )
    url = data.draw(urls(actor, world), label="url")
    what, body = data.draw(bodies(actor), label="body")
    with_token, extra = data.draw(headers(server.token(actor)), label="headers")
    assume(not starts_a_kernel(actor, method, url, body, world))

    before = snapshot(world, actor)
    content_before = await notebook_content(world)
    response = await server.api(
        method, url, user=actor if with_token else None, raw=body, headers=extra
    )
    note(f"{method} {url[:200]} [{what}] -> {response.code} {response.body[:200]!r}")

    assert response.code != 599, f"no answer: {response.error}"
    assert response.code < 500, f"{response.code}: {response.body[:300]!r}"
    if response.code >= 400 and url.startswith("/api/") and method != "HEAD":
        problem = json_error(response.body, response.code)
        assert problem is None, problem

    after = snapshot(world, actor)
    changes = diff(before, after)
    assert changes == [], f"{actor}'s request changed things outside their folder:\n" + "\n".join(
        changes
    )
    if actor != "alice" or world.notebook_id not in url:
        assert await notebook_content(world) == content_before
    me = await server.api("GET", "/api/user", user="bob")
    assert me.code == 200  # still answering others


# ---- what the fuzz found, asserted directly ---------------------------------------------

LONG = "n" * 256
DEEP_ARRAY = b"[" * 5000 + b"]" * 5000
DEEP_OBJECT = b'{"a":' * 5000 + b"1" + b"}" * 5000

CLIENT_ERRORS = [
    pytest.param(
        [
            ("GET", f"/api/contents/alice/{LONG}", None, 400),
            ("GET", f"/api/contents/bob/{LONG}", None, 400),
            ("PUT", f"/api/contents/alice/{LONG}.ipynb", {"type": "notebook"}, 400),
            ("PUT", f"/api/contents/alice/{LONG}", {"type": "directory"}, 400),
            ("PUT", f"/api/upload/alice/{LONG}.ipynb", "notebook", 400),
            ("PATCH", "/api/contents/alice/nb.ipynb", {"path": f"alice/{LONG}.ipynb"}, 400),
            ("GET", "/api/contents/alice/" + "a/" * 1540, None, 400),  # 3080 bytes
            ("GET", "/api/contents/alice/" + "a/" * 2100, None, 400),  # beyond PATH_MAX
            ("GET", "/api/contents/alice/" + "n" * 255, None, 404),  # the longest name allowed
        ],
        id="name-or-path-too-long",
    ),
    pytest.param(
        [
            ("PUT", "/api/contents/alice/deep.ipynb", DEEP_ARRAY, 400),
            ("POST", "/api/notebooks/{id}/shares", b'{"user":' + DEEP_ARRAY + b"}", 400),
            ("PATCH", "/api/contents/alice/nb.ipynb", b'{"path":' + DEEP_OBJECT + b"}", 400),
        ],
        id="deeply-nested-json",
    ),
    pytest.param(
        [
            ("DELETE", "/api/notebooks/{id}/shares/9223372036854775808", None, 404),
            ("DELETE", "/api/notebooks/{id}/links/9223372036854775808", None, 404),
            ("DELETE", "/api/notebooks/{id}/shares/" + "9" * 40, None, 404),
        ],
        id="id-beyond-64-bits",
    ),
]


@pytest.mark.parametrize("requests", CLIENT_ERRORS)
async def test_former_500s_are_client_errors(
    server: Server, requests: list[tuple[str, str, Any, int]]
) -> None:
    """Names over 255 bytes and paths over 3072 bytes are invalid paths (400), deeply nested
    JSON bodies are not valid JSON (400), share and link ids beyond 64 bits match no route
    (404): each used to answer 500. Asked by the owner, who may do everything else."""
    notebook_id = await server.create_notebook("alice/nb.ipynb", small_notebook(), editors=())
    answers, expected = [], []
    for method, url, body, status in requests:
        url = url.replace("{id}", notebook_id)
        if body == "notebook":
            response = await server.api(method, url, raw=json.dumps(small_notebook()).encode())
        elif isinstance(body, bytes):
            response = await server.api(method, url, raw=body)
        else:
            response = await server.api(method, url, body)
        answers.append((method, url[:60], response.code, json_error(response.body, response.code)))
        expected.append((method, url[:60], status, None))
    assert answers == expected


# A valid WebSocket handshake (what websockets.connect sends).
HANDSHAKE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


async def room_answers(
    server: Server, notebook_id: str, cases: list[tuple[str, str | None, dict[str, str]]]
) -> list[tuple[str, str | None, int, str | None]]:
    out = []
    for method, user, headers in cases:
        response = await server.api(method, f"/api/rooms/{notebook_id}", user=user, headers=headers)
        out.append((method, user, response.code, json_error(response.body, response.code)))
    return out


async def test_websocket_refusal_is_the_api_error(server: Server) -> None:
    """Refusals before the upgrade are the API's JSON errors: who is refused, and why."""
    notebook_id = await server.create_notebook("alice/nb.ipynb", small_notebook(), editors=())
    cases: list[tuple[str, str | None, dict[str, str]]] = [
        ("GET", "mallory", {}),
        ("GET", "mallory", HANDSHAKE),
        ("GET", None, {}),
        ("GET", None, HANDSHAKE),
        ("GET", None, {"Authorization": "token nonsense", **HANDSHAKE}),
        ("OPTIONS", "alice", {}),
    ]
    assert await room_answers(server, notebook_id, cases) == [
        ("GET", "mallory", 404, None),
        ("GET", "mallory", 404, None),
        ("GET", None, 401, None),
        ("GET", None, 401, None),
        ("GET", None, 401, None),
        ("OPTIONS", "alice", 405, None),
    ]


# A GET that is no valid WebSocket handshake, and the status tornado refuses it with.
BAD_HANDSHAKES = {
    "no-Upgrade-header": ({}, 400),
    "Connection-without-Upgrade": ({**HANDSHAKE, "Connection": "keep-alive"}, 400),
    "no-Sec-WebSocket-Key": (
        {k: v for k, v in HANDSHAKE.items() if k != "Sec-WebSocket-Key"},
        400,
    ),
    "unsupported-Sec-WebSocket-Version": ({**HANDSHAKE, "Sec-WebSocket-Version": "12"}, 426),
}


@pytest.mark.parametrize(
    ("headers", "status"), list(BAD_HANDSHAKES.values()), ids=list(BAD_HANDSHAKES)
)
async def test_bad_websocket_handshake_is_the_api_error(
    server: Server, headers: dict[str, str], status: int
) -> None:
    notebook_id = await server.create_notebook("alice/nb.ipynb", small_notebook(), editors=())
    answers = await room_answers(server, notebook_id, [("GET", "alice", headers)])
    assert answers == [("GET", "alice", status, None)]


@pytest.mark.parametrize("method", ["PUT", "POST", "PATCH", "DELETE"])
async def test_websocket_endpoint_refuses_other_methods_as_the_api_does(
    server: Server, method: str
) -> None:
    notebook_id = await server.create_notebook("alice/nb.ipynb", small_notebook(), editors=())
    cases: list[tuple[str, str | None, dict[str, str]]] = [
        (method, "alice", {}),
        (method, "mallory", {}),
        (method, None, {}),
    ]
    answers = await room_answers(server, notebook_id, cases)
    assert answers == [
        (method, "alice", 405, None),
        (method, "mallory", 405, None),
        (method, None, 401, None),
    ]
