"""The authorization matrix covers every endpoint: the README's table and the URL table.

``test_authorization_matrix`` is only as good as its rows. These tests tie
its rows to the README's "HTTP API" table (every ``METHOD /path`` listed
there, plus the WebSocket endpoint) and to the server's own URL table
(every route and every HTTP method its handler implements): an endpoint
added to the routes or the README without a row in the matrix fails here,
so no endpoint exists without a statement of who may call it.
"""

from __future__ import annotations

import re
from typing import Any

from tornado import web

from tests.conftest import Server

from .support import json_error, small_notebook
from .test_authorization_matrix import CHECKPOINT, MATRIX, README

METHOD = r"(?:GET|PUT|POST|PATCH|DELETE)"


def readme_endpoints() -> list[str]:
    """Every ``METHOD /path`` of the README's HTTP API table, query strings left out."""
    text = README.read_text()
    section = text.split("## HTTP API", 1)[1].split("\n## ", 1)[0]
    endpoints: list[str] = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first_cell = line.replace("\\|", "\x00").split("|")[1]
        pending: list[str] = []
        methods: list[str] = []
        last_path = ""
        for span in re.findall(r"`([^`]*)`", first_cell):
            span = span.replace("\x00", "|")
            if span.startswith("{"):
                continue  # a request body
            match = re.fullmatch(rf"({METHOD}(?:/{METHOD})*)(?: (.+))?", span)
            if match:
                if match.group(2) is None:
                    pending += match.group(1).split("/")
                    continue
                methods = pending + match.group(1).split("/")
                pending = []
                path = match.group(2)
            else:
                path = span  # ".../restart": the previous methods on a sibling path
            path = resolve(re.sub(r"\[?\?.*$", "", path), last_path)
            endpoints += [f"{m} {path}" for m in methods]
            last_path = path
    return endpoints


def resolve(path: str, previous: str) -> str:
    """``.../x/y`` relative to the previous path: from its segment ``x``, or its last one."""
    if not path.startswith("..."):
        return path
    suffix = path[3:].strip("/").split("/")
    parts = previous.split("/")
    cut = parts.index(suffix[0]) if suffix[0] in parts else len(parts) - 1
    return "/".join(parts[:cut] + suffix)


def concrete(endpoint: str) -> tuple[str, str]:
    """(method, URL) of an endpoint with its placeholders filled in."""
    method, path = endpoint.split(" ", 1)
    path = path.replace("/checkpoints/<name>", f"/checkpoints/{CHECKPOINT}")
    path = re.sub(r"<(?:id|notebook id)>", "0123456789abcdef0123456789abcdef", path)
    path = re.sub(r"<(?:share id|link id)>", "7", path)
    path = path.replace("<session id>", "01234567-89ab-cdef-0123-456789abcdef")
    path = path.replace("<trash id>", "0123456789abcdef0123456789abcdef")
    path = path.replace("<kernel id>", "01234567-89ab-cdef-0123-456789abcdef")
    path = re.sub(r"<(?:folder|path)>", "alice/sub", path)
    path = re.sub(r"<[a-z ]+>", "sam", path)
    return ("GET" if method == "WS" else method), path


def routes(server: Server) -> list[tuple[str, str, type[web.RequestHandler]]]:
    """(method, URL pattern, handler) of every API route the server serves (with the
    Jupyter Server API under ``/jupyter/api`` and the operators' ``/metrics`` and ``/health``)."""
    app = server.http.request_callback
    assert isinstance(app, web.Application)
    out = []
    for rule in app.wildcard_router.rules:
        pattern = rule.matcher.regex.pattern  # type: ignore[attr-defined]
        handler = rule.target
        if not pattern.startswith(("/api/", "/jupyter/api", "/metrics", "/health")):
            continue
        for method in ("get", "put", "post", "patch", "delete"):
            if getattr(handler, method) is not getattr(web.RequestHandler, method):
                out.append((method.upper(), pattern, handler))
    return out


async def test_every_endpoint_is_in_the_matrix(server: Server) -> None:
    documented = readme_endpoints()
    assert len(documented) == len(set(documented)), "an endpoint is listed twice in the README"
    assert "ws://HOST:PORT/api/rooms/<notebook id>" in README.read_text()
    documented.append("WS /api/rooms/<notebook id>")
    assert "ws://HOST:PORT/jupyter/api/kernels/<kernel id>/channels" in README.read_text()
    documented.append("WS /jupyter/api/kernels/<kernel id>/channels")
    assert sorted(documented) == sorted(MATRIX), (
        f"in the README but not the matrix: {sorted(set(documented) - set(MATRIX))}; "
        f"in the matrix but not the README: {sorted(set(MATRIX) - set(documented))}"
    )
    served = routes(server)
    unmatched = []
    for endpoint in MATRIX:
        method, url = concrete(endpoint)
        if not any(m == method and re.fullmatch(p, url) for m, p, _ in served):
            unmatched.append(endpoint)
    assert unmatched == [], f"documented but not served: {unmatched}"
    uncovered = uncovered_routes(server)
    assert uncovered == [], f"served but in no README row or matrix row: {uncovered}"


def uncovered_routes(server: Server) -> list[str]:
    """API routes and methods the server answers that no matrix row calls."""
    uncovered = []
    for method, pattern, handler in routes(server):
        if not any(
            concrete(e)[0] == method and re.fullmatch(pattern, concrete(e)[1]) for e in MATRIX
        ):
            uncovered.append(f"{method} {pattern} ({handler.__name__})")
    return uncovered


async def test_a_new_route_without_a_row_is_reported(server: Server) -> None:
    """The guard above works: a route added to the URL table and nowhere else is caught."""

    class Export(web.RequestHandler):
        async def post(self) -> None:
            self.finish("everything")

    app = server.http.request_callback
    assert isinstance(app, web.Application)
    app.wildcard_router.add_rules([(r"/api/export-everything", Export)])
    assert "POST /api/export-everything$ (Export)" in uncovered_routes(server)


async def test_undocumented_hand_methods_are_not_served(server: Server) -> None:
    """POST .../hand and DELETE .../hand/<user> are two handlers: the other methods of either
    path are not served (405, as JSON), for anybody, with or without access."""
    notebook_id = await server.create_notebook("alice/nb.ipynb", small_notebook(), editors=())
    answers = []
    for user in ("mallory", "alice"):
        for method, url in (
            ("DELETE", f"/api/notebooks/{notebook_id}/hand"),
            ("GET", f"/api/notebooks/{notebook_id}/hand"),
            ("PUT", f"/api/notebooks/{notebook_id}/hand"),
            ("POST", f"/api/notebooks/{notebook_id}/hand/alice"),
            ("GET", f"/api/notebooks/{notebook_id}/hand/alice"),
            ("PATCH", f"/api/notebooks/{notebook_id}/hand/alice"),
        ):
            body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
            response = await server.api(method, url, body, user=user)
            answers.append(
                (
                    user,
                    method,
                    url.split(notebook_id)[1],
                    response.code,
                    json_error(response.body, response.code),
                )
            )
    assert answers == [(user, method, url, 405, None) for user, method, url, _, _ in answers]
