"""deploy/nginx.conf run by real nginx in front of a real server.

nginx (Debian's) runs in the foreground as a child process, on free loopback
ports, terminating TLS with a certificate made for the test; the site file is
deploy/nginx.conf itself with only its ports and certificate paths swapped.
Browsers are WebClients bound to other loopback addresses (127.0.0.2,
127.0.0.3), so nginx, and through it the server, sees them as two machines.
Logins go through the real login form and real PAM, with throwaway unix users.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tornado.httpclient import HTTPResponse

from auth.pam import PAMAuthenticator
from tests.auth.unix_users import UnixUsers, throwaway_unix_users
from tests.certs import client_context, self_signed_cert
from tests.conftest import Server, ServerFactory
from tests.faults.server_process import kernel_reachable_dir
from tests.server.test_proxies import cookie_flags
from tests.webclient import WebClient
from tests.yclient import YClient

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "deploy" / "nginx.conf"
CLIENT_A, CLIENT_B = "127.0.0.2", "127.0.0.3"

MAIN_CONF = """\
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log notice;
events {{ worker_connections 256; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/site.conf;
}}
"""


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def render_site(upstream_port: int, http_port: int, https_port: int, cert: Path, key: Path) -> str:
    """deploy/nginx.conf with this test's ports and certificate; each swap must apply once."""
    site = SITE.read_text()
    swaps = {
        "server 127.0.0.1:8765;": f"server 127.0.0.1:{upstream_port};",
        "    listen 80;\n": f"    listen 127.0.0.1:{http_port};\n",
        "    listen [::]:80;\n": "",
        "    listen 443 ssl;\n": f"    listen 127.0.0.1:{https_port} ssl;\n",
        "    listen [::]:443 ssl;\n": "",
        "/etc/letsencrypt/live/notebooks.example.org/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/notebooks.example.org/privkey.pem": str(key),
    }
    for old, new in swaps.items():
        assert site.count(old) == 1, f"deploy/nginx.conf no longer has {old!r} once"
        site = site.replace(old, new)
    return site


@dataclass
class Nginx:
    """A running nginx: its public URLs and the certificate clients must trust."""

    https_url: str
    http_url: str
    cert: Path

    def browser(self, source_address: str) -> WebClient:
        return WebClient(self.https_url, network_interface=source_address, ca_certs=str(self.cert))


async def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    async with asyncio.timeout(15):
        while True:
            if process.poll() is not None:
                raise AssertionError(f"nginx exited ({process.returncode}):\n{log.read_text()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            await writer.wait_closed()
            return


StartNginx = Callable[[Server], Awaitable[Nginx]]


@pytest.fixture
async def start_nginx() -> AsyncIterator[StartNginx]:
    """Start nginx in front of a server; every nginx is stopped at the end."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is not installed (scripts/test installs it: apt-get install nginx)")
    running: list[subprocess.Popen[bytes]] = []
    folders = contextlib.ExitStack()

    async def start(server: Server) -> Nginx:
        # Not under pytest's 0700 tmp_path: nginx's workers (www-data) use the temp folders.
        folder = folders.enter_context(kernel_reachable_dir("collab-nginx-"))
        cert, key = self_signed_cert(folder)
        http_port, https_port = unused_port(), unused_port()
        site = render_site(server.port, http_port, https_port, cert, key)
        (folder / "site.conf").write_text(site)
        (folder / "nginx.conf").write_text(MAIN_CONF.format(folder=folder))
        log = folder / "error.log"
        process = subprocess.Popen(
            [nginx, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", str(log)]
            + ["-g", "daemon off;"],
        )
        running.append(process)
        await wait_for_port(https_port, process, log)
        await wait_for_port(http_port, process, log)
        return Nginx(f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}", cert)

    with folders:
        yield start
        for process in running:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 15)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)


@pytest.fixture
def unix_users() -> Iterator[UnixUsers]:
    yield from throwaway_unix_users()


def cookie_header(browser: WebClient) -> str:
    """The Cookie header the browser would send to its site."""
    jar = browser.cookies[urllib.parse.urlsplit(browser.base_url).netloc]
    return "; ".join(f"{k}={v}" for k, v in jar.items())


async def test_log_in_and_edit_a_room_through_nginx_with_secure_cookies(
    make_server: ServerFactory, start_nginx: StartNginx, unix_users: UnixUsers
) -> None:
    name, password = unix_users.add_user()
    server = await make_server(trusted_proxies=["127.0.0.1"], authenticators=[PAMAuthenticator()])
    nginx = await start_nginx(server)
    browser = nginx.browser(CLIENT_A)

    page = await browser.get("/login")
    assert page.code == 200
    assert cookie_flags(page, "_xsrf")["secure"] is True
    logged_in = await browser.post("/login", form={"username": name, "password": password})
    assert logged_in.code == 302, logged_in.body
    flags = cookie_flags(logged_in, "collab-session")
    assert flags == {"secure": True, "httponly": True, "samesite": "Lax", "path": "/"}
    # The session remembers the browser's address, not nginx's.
    user = server.services.users.get(name)
    assert [s.address for s in server.services.sessions.list_sessions(user.id)] == [CLIENT_A]

    me = await browser.get("/api/user")
    assert me.code == 200 and json.loads(me.body)["name"] == name
    created = await browser.request(
        "PUT", f"/api/contents/{name}/deployed.ipynb", body=json.dumps({"type": "notebook"})
    )
    assert created.code == 201, created.body
    notebook_id = json.loads(created.body)["id"]

    # The page's WebSocket, as a browser opens it: wss through nginx, the session cookie,
    # the public https origin. A second client talks to the server directly with a token.
    proxied_url = nginx.https_url.replace("https://", "wss://") + f"/api/rooms/{notebook_id}"
    headers = {"Cookie": cookie_header(browser), "Origin": nginx.https_url}
    tls = client_context(nginx.cert)
    token = server.services.tokens.create(name)
    async with (
        YClient(proxied_url, None, headers=headers, ssl=tls, local_addr=(CLIENT_A, 0)) as via_nginx,
        YClient(server.ws_url(notebook_id), token) as direct,
    ):
        with via_nginx.doc.transaction():
            via_nginx.notebook.append_cell({"cell_type": "code", "source": "x = 'through nginx'"})
        await direct.wait_for(lambda: direct.sources() == ["", "x = 'through nginx'"])
        with direct.doc.transaction():
            direct.notebook.append_cell({"cell_type": "markdown", "source": "and back"})
        await via_nginx.wait_for(lambda: via_nginx.sources() == direct.sources())
        assert len(via_nginx.sources()) == 3

    # Another site's page cannot use the cookie, through nginx either.
    headers["Origin"] = "https://evil.test"
    with pytest.raises(Exception, match="403"):
        await YClient(proxied_url, None, headers=headers, ssl=tls).connect()

    # Plain http to nginx is sent to https.
    plain = await WebClient(nginx.http_url).get("/login")
    assert plain.code == 301 and plain.headers["Location"] == "https://127.0.0.1/login"


async def failed_login(
    browser: WebClient, name: str, headers: dict[str, str] | None = None
) -> HTTPResponse:
    await browser.get("/login")
    return await browser.post(
        "/login", form={"username": name, "password": "wrong password"}, headers=headers
    )


async def test_login_throttle_keys_by_the_real_client_behind_nginx(
    make_server: ServerFactory, start_nginx: StartNginx, unix_users: UnixUsers
) -> None:
    name, password = unix_users.add_user()
    pam = PAMAuthenticator(max_failures_per_address=1)
    server = await make_server(trusted_proxies=["127.0.0.1"], authenticators=[pam])
    nginx = await start_nginx(server)
    a, b = nginx.browser(CLIENT_A), nginx.browser(CLIENT_B)

    assert (await failed_login(a, name)).code == 403  # PAM said no (after its fail delay)
    refused = await a.post("/login", form={"username": name, "password": password})
    assert refused.code == 429 and int(refused.headers["Retry-After"]) > 0
    # A naming B (or anyone) in its own X-Forwarded-For changes nothing: nginx appends A.
    for forged in (CLIENT_B, f"198.51.100.7, {CLIENT_B}"):
        spoofed = await failed_login(a, name, headers={"X-Forwarded-For": forged})
        assert spoofed.code == 429

    # B, another machine behind the same nginx, is not locked out.
    await b.get("/login")
    logged_in = await b.post("/login", form={"username": name, "password": password})
    assert logged_in.code == 302, logged_in.body


async def test_without_trusted_proxies_nginx_is_every_client(
    make_server: ServerFactory, start_nginx: StartNginx, unix_users: UnixUsers
) -> None:
    """The failure the option fixes: one client's failures lock out everybody behind nginx."""
    name, password = unix_users.add_user()
    server = await make_server(authenticators=[PAMAuthenticator(max_failures_per_address=1)])
    nginx = await start_nginx(server)
    a, b = nginx.browser(CLIENT_A), nginx.browser(CLIENT_B)
    assert (await failed_login(a, name)).code == 403
    await b.get("/login")
    locked_out = await b.post("/login", form={"username": name, "password": password})
    assert locked_out.code == 429
    # And the cookie is not Secure: the server cannot tell the browser used https.
    assert cookie_flags(await nginx.browser(CLIENT_B).get("/login"), "_xsrf")["secure"] == ""
