"""Native TLS (``certfile``/``keyfile``) and ``trusted_proxies``, through the real command.

Each server is ``python -m collab_server`` from this worktree on a free port
(``--port=0``; the port is read from its "listening on" line), with a
certificate made by openssl for the test. Clients are real: Tornado's HTTP
client over HTTPS and a WebSocket client over wss, both checking the
certificate.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from collab_server.tls import TLSConfigError, server_context
from tests.certs import client_context, self_signed_cert
from tests.faults.server_process import prepare_users
from tests.yclient import YClient

from .test_proxies import cookie_flags

REPO = Path(__file__).resolve().parents[2]
Command = list[str]


def server_command(folder: Path, *options: str) -> Command:
    return [
        sys.executable,
        "-m",
        "collab_server",
        "--port=0",
        f"--root-dir={folder / 'notebooks'}",
        f"--data-dir={folder / 'data'}",
        "--KernelPool.pool_size=0",
        "--CollabServer.authenticators=[]",
        *options,
    ]


async def run_to_exit(command: Command, timeout: float = 60) -> tuple[int, str]:
    """Run a server command that must fail at start-up; returns (exit code, stderr)."""
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout):
            _, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"{command} did not exit within {timeout} s") from None
    assert process.returncode is not None
    return process.returncode, stderr.decode(errors="replace")


Start = Callable[..., Awaitable[str]]


@pytest.fixture
async def start_server() -> AsyncIterator[Start]:
    """Start servers (``python -m collab_server``); returns their URL; all stopped at the end."""
    processes: list[asyncio.subprocess.Process] = []

    async def start(command: Command, timeout: float = 60) -> str:
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        processes.append(process)
        assert process.stdout is not None and process.stderr is not None
        async with asyncio.timeout(timeout):
            line = (await process.stdout.readline()).decode()
        found = re.search(r"listening on (https?://[^/]+)/", line)
        if found is None:
            stderr = (await process.stderr.read()).decode(errors="replace")
            raise AssertionError(f"server did not start: {line!r}\n{stderr[-3000:]}")
        return found.group(1)

    yield start
    for process in processes:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path)


async def test_native_tls_serves_https_and_wss(
    tmp_path: Path, cert: tuple[Path, Path], start_server: Start
) -> None:
    certfile, keyfile = cert
    token = prepare_users(tmp_path / "data", ["alice"])["alice"]
    options = (f"--CollabServer.certfile={certfile}", f"--CollabServer.keyfile={keyfile}")
    url = await start_server(server_command(tmp_path, *options))
    assert url.startswith("https://127.0.0.1:")
    http = AsyncHTTPClient()
    auth = {"Authorization": f"token {token}"}

    me = await http.fetch(url + "/api/user", headers=auth, ca_certs=str(certfile))
    assert json.loads(me.body)["name"] == "alice"
    page = await http.fetch(url + "/login", ca_certs=str(certfile))
    flags = cookie_flags(page, "_xsrf")
    assert flags["secure"] is True and flags["samesite"] == "Lax"

    # The certificate is checked: a client that does not trust it gets no answer.
    with pytest.raises(ssl.SSLCertVerificationError):
        await http.fetch(url + "/api/user", headers=auth)
    # Plain HTTP to the TLS port is not served.
    with pytest.raises((HTTPClientError, OSError)):
        await http.fetch(url.replace("https://", "http://") + "/api/user", headers=auth)

    created = await http.fetch(
        url + "/api/contents/alice/tls.ipynb",
        method="PUT",
        body=json.dumps({"type": "notebook"}),
        headers=auth,
        ca_certs=str(certfile),
    )
    notebook_id = json.loads(created.body)["id"]
    ws_url = url.replace("https://", "wss://") + f"/api/rooms/{notebook_id}"
    tls = client_context(certfile)
    async with YClient(ws_url, token, ssl=tls) as first, YClient(ws_url, token, ssl=tls) as second:
        assert first.ws.transport.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
        with first.doc.transaction():
            first.notebook.append_cell({"cell_type": "code", "source": "print('over wss')"})
        await second.wait_for(lambda: second.sources() == ["", "print('over wss')"])


async def test_unusable_certificate_stops_the_server_at_start(
    tmp_path: Path, cert: tuple[Path, Path]
) -> None:
    certfile, keyfile = cert
    missing = tmp_path / "missing.pem"
    code, stderr = await run_to_exit(
        server_command(
            tmp_path, f"--CollabServer.certfile={missing}", f"--CollabServer.keyfile={keyfile}"
        )
    )
    assert code == 1
    assert stderr.splitlines() == [
        f"collab-server: cannot read the TLS certificate file {missing}: No such file or directory"
    ]
    # Certificate and key swapped.
    code, stderr = await run_to_exit(
        server_command(
            tmp_path, f"--CollabServer.certfile={keyfile}", f"--CollabServer.keyfile={certfile}"
        )
    )
    assert code == 1 and len(stderr.splitlines()) == 1
    assert stderr.startswith("collab-server: cannot use the TLS certificate and key in")
    assert not (tmp_path / "data").exists()  # failed before anything was created


def test_server_context_refuses_bad_files_with_one_line(tmp_path: Path) -> None:
    certfile, keyfile = self_signed_cert(tmp_path)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other_cert, _ = self_signed_cert(other_dir)
    encrypted = tmp_path / "encrypted.pem"
    with encrypted.open("wb") as out:
        subprocess.run(
            ["openssl", "pkey", "-in", str(keyfile), "-aes256", "-passout", "pass:x"],
            check=True,
            stdout=out,
        )
    cases = {
        (str(other_cert), str(keyfile)): "the key does not belong to the certificate",
        (str(certfile), str(encrypted)): "is encrypted; give the server an unencrypted key",
        (str(certfile), ""): "expected a PEM certificate (chain) and its PEM private key",
        (str(certfile), str(tmp_path)): f"cannot read the TLS key file {tmp_path}: Is a directory",
        ("", str(keyfile)): "a TLS keyfile is set but no certfile",
    }
    for (cert_arg, key_arg), message in cases.items():
        with pytest.raises(TLSConfigError, match=re.escape(message)) as refused:
            server_context(cert_arg, key_arg)
        assert "\n" not in str(refused.value)
    context = server_context(str(certfile), str(keyfile))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    # The key may also sit in the certificate file.
    combined = tmp_path / "combined.pem"
    combined.write_bytes(certfile.read_bytes() + keyfile.read_bytes())
    assert server_context(str(combined)).minimum_version == ssl.TLSVersion.TLSv1_2


async def test_trusted_proxies_option_reaches_the_app(tmp_path: Path, start_server: Start) -> None:
    trust = '--CollabServer.trusted_proxies=["127.0.0.1"]'
    url = await start_server(server_command(tmp_path, trust))
    assert url.startswith("http://")
    page = await AsyncHTTPClient().fetch(url + "/login", headers={"X-Forwarded-Proto": "https"})
    assert cookie_flags(page, "_xsrf")["secure"] is True
    code, stderr = await run_to_exit(
        server_command(tmp_path / "bad", '--CollabServer.trusted_proxies=["127.0.0.1/40"]')
    )
    assert code != 0
    assert "CollabServer.trusted_proxies: '127.0.0.1/40' is not an IP address or network" in stderr
