"""Shared fixtures: a real server on an unused port, its tokens, an HTTP client."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jupyter_client
import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

import kernels.launch
from collab_server.routes import make_app
from collab_server.services import Services, Settings
from crdt.room import RoomSettings
from kernels.identity import server_is_root
from kernels.pool import KernelPool


@dataclass
class Server:
    """A running server in the test's event loop."""

    services: Services
    http: HTTPServer
    port: int
    tokens: dict[str, str] = field(default_factory=dict)
    stopped: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, room_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/api/rooms/{room_id}"

    def token(self, username: str = "alice") -> str:
        if username not in self.tokens:
            self.tokens[username] = self.services.tokens.create(username)
        return self.tokens[username]

    async def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        user: str | None = "alice",
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> HTTPResponse:
        """Call the REST API; returns the response whatever its status."""
        all_headers = dict(headers or {})
        if user is not None:
            all_headers["Authorization"] = f"token {self.token(user)}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is None and method in ("PUT", "POST", "PATCH"):
            data = b""
        return await AsyncHTTPClient().fetch(
            self.url + path,
            method=method,
            body=data,
            headers=all_headers,
            raise_error=False,
            allow_nonstandard_methods=True,
        )

    async def create_notebook(
        self,
        path: str,
        content: dict[str, Any] | None = None,
        editors: tuple[str, ...] = ("bob", "carol"),
    ) -> str:
        """Create a notebook as its owner (the path's first folder) and share it with
        ``editors`` as editors; return its id."""
        owner = path.split("/", 1)[0]
        response = await self.api(
            "PUT", f"/api/contents/{path}", {"type": "notebook", "content": content}, user=owner
        )
        assert response.code == 201, response.body
        notebook_id: str = json.loads(response.body)["id"]
        for editor in editors:
            if editor != owner:
                await self.share(notebook_id, editor, "editor", owner=owner)
        return notebook_id

    async def share(
        self, notebook_id: str, user: str, role: str, owner: str = "alice", group: bool = False
    ) -> dict[str, Any]:
        """Share through the API as ``owner``; returns the share."""
        if not group:
            self.services.users.get_or_create(user)
        response = await self.api(
            "POST",
            f"/api/notebooks/{notebook_id}/shares",
            {"group" if group else "user": user, "role": role},
            user=owner,
        )
        assert response.code == 201, response.body
        share: dict[str, Any] = json.loads(response.body)
        return share

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.http.stop()
        await self.services.stop()
        await self.http.close_all_connections()


ServerFactory = Callable[..., Awaitable[Server]]


async def wait_until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    """Poll ``predicate`` (for state outside any client: files, the store) until true."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def _searchable_by_others(path: Path) -> None:
    """Give others search permission (x, not read) on every folder above ``path``."""
    for folder in [*reversed(path.parents)]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(folder, stat.S_IMODE(mode) | stat.S_IXOTH)


@pytest.fixture(scope="session", autouse=True)
def kernel_program_reachable() -> None:
    """As root, let the kernel accounts reach this interpreter, its packages and the launcher.

    Kernels of other users run this same interpreter. When it lives under
    a private folder (pyenv under /root, mode 0700 here), those users cannot
    even start it. Search permission (o+x) on the folders above is all they
    need: it does not let them list those folders. It is left in place, as
    an installation step would (other test runs on this machine may rely on
    it at the same moment, so restoring it could break them).
    """
    if not server_is_root():
        return
    for module_path in (sys.executable, jupyter_client.__file__, kernels.launch.__file__):
        _searchable_by_others(Path(module_path).resolve())
    _searchable_by_others(Path(sys.executable))


@pytest.fixture(scope="session")
def server_folders() -> Iterator[Path]:
    """One folder for every test server's files, outside pytest's basetemp.

    Kernels run as other unix users (the notebook's owner, or the service
    account) and must reach their folder under the root; pytest makes its
    own temp root 0700 (again whenever any pytest session starts on this
    machine), so the servers' folders live here, 0711: searchable, not
    listable.
    """
    base = Path(tempfile.mkdtemp(prefix="collab-tests-", dir="/var/tmp"))
    base.chmod(0o711)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def dirs(server_folders: Path, request: pytest.FixtureRequest) -> tuple[Path, Path]:
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=server_folders))
    folder.chmod(0o711)
    return folder / "notebooks", folder / "data"


@pytest.fixture
async def make_server(dirs: tuple[Path, Path]) -> AsyncIterator[ServerFactory]:
    """Start servers on the same folders (so a test can restart one); all stopped at the end."""
    running: list[Server] = []

    async def start(**overrides: Any) -> Server:
        room = RoomSettings(
            save_delay=overrides.pop("save_delay", 0.2),
            compact_after_updates=overrides.pop("compact_after_updates", 500),
        )
        max_message_size = overrides.pop("max_message_size", 16 * 1024 * 1024)
        allowed_origins = overrides.pop("allowed_origins", frozenset())
        trusted_proxies = overrides.pop("trusted_proxies", ())
        max_send_buffer = overrides.pop("max_send_buffer", 64 * 1024 * 1024)
        overrides.setdefault(
            "kernel_pool",
            KernelPool(pool_size=0, max_spares=0, check_interval=0.1, startup_timeout=30),
        )
        settings = Settings(
            root_dir=dirs[0],
            data_dir=dirs[1],
            disk_poll_interval=overrides.pop("disk_poll_interval", 0.2),
            room=room,
            **overrides,
        )
        services = Services(settings)
        await services.start()
        sock, port = bind_unused_port()
        app = make_app(
            services,
            max_send_buffer=max_send_buffer,
            allowed_origins=allowed_origins,
            trusted_proxies=trusted_proxies,
            websocket_max_message_size=max_message_size,
        )
        http = HTTPServer(app)
        http.add_sockets([sock])
        server = Server(services, http, port)
        running.append(server)
        return server

    yield start
    for server in running:
        await server.stop()


@pytest.fixture
async def server(make_server: ServerFactory) -> Server:
    return await make_server()
