"""Real listeners that stand for "the network", and a probe kernels run against them.

One listens on the host's loopback (127.0.0.1, where the server and every
local service listen); the other in a network namespace made here, joined
to the host by a veth pair with 10.200.x.y/30 addresses only. Each sends a
random token to whoever connects, so a kernel that prints the token has
really reached it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Listener:
    """A TCP listener that answers every connection with ``token``."""

    host: str
    port: int
    token: str


#: Code for a kernel: what it got from each (host, port), its token or the errno name.
PROBE = """
import errno as _errno, json as _json, socket as _socket
def _probe(host, port):
    sock = _socket.socket()
    sock.settimeout(10)
    try:
        sock.connect((host, port))
        return sock.recv(100).decode()
    except OSError as error:
        return _errno.errorcode.get(error.errno or 0, type(error).__name__)
    finally:
        sock.close()
print(_json.dumps([_probe(h, p) for h, p in {targets!r}]))
"""


def probe_code(*listeners: Listener) -> str:
    """The code that probes ``listeners``; it prints a JSON list, one entry per listener."""
    return PROBE.format(targets=[(listener.host, listener.port) for listener in listeners])


@contextlib.asynccontextmanager
async def listen_on_host() -> AsyncIterator[Listener]:
    """A listener on 127.0.0.1 (an unused port), served by the running event loop."""
    token = f"host-{secrets.token_hex(4)}"

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(token.encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield Listener("127.0.0.1", server.sockets[0].getsockname()[1], token)
    finally:
        server.close()
        await server.wait_closed()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


_LISTEN = """
import socket, sys
server = socket.create_server((sys.argv[1], 0))
print(server.getsockname()[1], flush=True)
while True:
    conn, _ = server.accept()
    conn.sendall(sys.argv[2].encode())
    conn.close()
"""


@contextlib.contextmanager
def listen_in_namespace() -> Iterator[Listener]:
    """A listener in a new network namespace, reachable from the host over a veth pair.

    Skips unless root with iproute2. The namespace, the veth pair and the
    listener process are removed on exit.
    """
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs as root)")
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (ip) is not installed")
    tag = secrets.token_hex(3)
    namespace, host_end, ns_end = f"cs-sbx-{tag}", f"csh{tag}", f"csn{tag}"
    third, fourth = secrets.randbelow(256), secrets.randbelow(64) * 4
    host_address, ns_address = f"10.200.{third}.{fourth + 1}", f"10.200.{third}.{fourth + 2}"
    token = f"namespace-{secrets.token_hex(4)}"
    listener: subprocess.Popen[str] | None = None
    try:
        _ip("netns", "add", namespace)
        _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        _ip("link", "set", ns_end, "netns", namespace)
        _ip("addr", "add", f"{host_address}/30", "dev", host_end)
        _ip("link", "set", host_end, "up")
        _ip("-n", namespace, "addr", "add", f"{ns_address}/30", "dev", ns_end)
        _ip("-n", namespace, "link", "set", ns_end, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        command = [sys.executable, "-I", "-c", _LISTEN, ns_address, token]
        listener = subprocess.Popen(
            ["ip", "netns", "exec", namespace, *command], stdout=subprocess.PIPE, text=True
        )
        assert listener.stdout is not None
        port = int(listener.stdout.readline())  # printed once it listens
        yield Listener(ns_address, port, token)
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        subprocess.run(["ip", "link", "del", host_end], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)
