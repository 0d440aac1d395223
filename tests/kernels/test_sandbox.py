"""Kernels without network: a namespace of their own with loopback only (needs root, as on CI).

"The network" is two real listeners (:mod:`tests.kernels.listeners`): one
on the host's loopback, one in a network namespace the test makes.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

import kernels.sandbox
from kernels.identity import KernelOwner
from kernels.pool import KernelPool, ManagedKernel

from .conftest import TIMEOUT, UnixAccounts, execute
from .listeners import Listener, listen_in_namespace, listen_on_host, probe_code

PoolFactory = Callable[..., KernelPool]
WORKTREE = Path(__file__).resolve().parents[2]


async def probe(kernel: ManagedKernel, *listeners: Listener) -> list[str]:
    """What ``kernel`` got from each listener: its token, or why it could not connect."""
    result = await execute(kernel.client, probe_code(*listeners))
    assert result.reply["status"] == "ok", result.reply
    found: list[str] = json.loads(result.stdout)
    return found


#: The kernel's own loopback works: it can listen on it and connect to itself.
OWN_LOOPBACK = """
import socket
_server = socket.create_server(("127.0.0.1", 0))
_client = socket.create_connection(_server.getsockname(), timeout=5)
_conn, _ = _server.accept()
_conn.sendall(b"own-loopback")
print(_client.recv(100).decode())
for _s in (_client, _conn, _server):
    _s.close()
"""


@pytest.fixture
async def host_listener() -> AsyncIterator[Listener]:
    async with listen_on_host() as listener:
        yield listener


@pytest.fixture
def namespace_listener() -> Iterator[Listener]:
    with listen_in_namespace() as listener:
        yield listener


def test_the_test_network_is_reachable_from_the_host(namespace_listener: Listener) -> None:
    """The namespace's listener answers the host: a kernel that fails to reach it is cut off."""
    with socket.create_connection((namespace_listener.host, namespace_listener.port), 10) as s:
        assert s.recv(100).decode() == namespace_listener.token


async def test_a_kernel_without_network_reaches_neither_the_host_nor_other_namespaces(
    unix_accounts: UnixAccounts,
    pool_factory: PoolFactory,
    folder_for: Callable[..., Path],
    host_listener: Listener,
    namespace_listener: Listener,
) -> None:
    network = unix_accounts.add_group()
    alice = unix_accounts.add(groups=(network,))  # in a network group: has the network
    bob = unix_accounts.add()  # in none: loopback only
    alice_owner = KernelOwner(alice.pw_name, unix=True)
    bob_owner = KernelOwner(bob.pw_name, unix=True)
    service = unix_accounts.add()

    async with pool_factory(
        pool_size=0, kernel_user=service.pw_name, network_groups={network}
    ) as pool:
        alice_kernel, bob_kernel = await asyncio.gather(
            pool.kernel_for("nb-a", "python3", alice_owner, folder_for(alice_owner)),
            pool.kernel_for("nb-b", "python3", bob_owner, folder_for(bob_owner)),
        )
        assert (alice_kernel.network, bob_kernel.network) == (True, False)

        async with asyncio.timeout(TIMEOUT):  # each refusal is immediate, not a timeout
            found = await probe(bob_kernel, host_listener, namespace_listener)
        assert found == ["ECONNREFUSED", "ENETUNREACH"]
        assert await probe(alice_kernel, host_listener, namespace_listener) == [
            host_listener.token,
            namespace_listener.token,
        ]

        # Bob's kernel is still bob (not root), its loopback works, and it cannot
        # join the server's network namespace.
        result = await execute(
            bob_kernel.client,
            "import os; print(os.getuid(), os.geteuid(), os.getgid(), oct(os.umask(0o077)))",
        )
        ids = [str(bob.pw_uid), str(bob.pw_uid), str(bob.pw_gid), "0o77"]
        assert result.stdout.split() == ids
        assert (await execute(bob_kernel.client, OWN_LOOPBACK)).stdout.strip() == "own-loopback"
        escape = (
            "import ctypes, os\n"
            "try:\n"
            f"    fd = os.open('/proc/{os.getpid()}/ns/net', os.O_RDONLY)\n"
            "except OSError as error:\n"
            "    print(type(error).__name__)\n"
            "else:\n"
            "    libc = ctypes.CDLL(None, use_errno=True)\n"
            "    print(libc.setns(fd, 0x40000000), os.strerror(ctypes.get_errno()))\n"
        )
        assert (await execute(bob_kernel.client, escape)).stdout.strip() in (
            "PermissionError",
            "-1 Operation not permitted",
        )

        # A restart keeps it without network.
        await pool.restart("nb-b")
        assert await probe(bob_kernel, host_listener) == ["ECONNREFUSED"]


async def test_server_groups_and_kernelspecs_give_the_network_and_spares_never_cross(
    unix_accounts: UnixAccounts,
    pool_factory: PoolFactory,
    folder_for: Callable[..., Path],
    host_listener: Listener,
) -> None:
    service = unix_accounts.add()
    carol = KernelOwner("carol", unix=False, groups=frozenset({"net"}))  # server group
    dave = KernelOwner("dave", unix=False, groups=frozenset({"other"}))
    specs = Path(tempfile.mkdtemp(prefix="cs-specs-"))
    spec_dir = specs / "online"
    spec_dir.mkdir()
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python with network",
                "language": "python",
                "metadata": {"collab_server": {"network": True}},
            }
        )
    )
    try:
        async with pool_factory(
            pool_size=0,
            kernel_user=service.pw_name,
            network_groups={"net"},
            extra_kernel_dirs=[str(specs)],
        ) as pool:
            # Both run as the service account; only the network tells their spares apart.
            carol_folder = folder_for(carol, service.pw_name)
            dave_folder = folder_for(dave, service.pw_name)
            pool.prewarm(dave)
            await pool.wait_for_spares()
            assert pool.spare_count("python3") == 1
            carol_kernel = await pool.kernel_for("nb-c", "python3", carol, carol_folder)
            assert not carol_kernel.from_spare and carol_kernel.network
            dave_kernel = await pool.kernel_for("nb-d", "python3", dave, dave_folder)
            assert dave_kernel.from_spare and not dave_kernel.network
            assert carol_kernel.identity.user == dave_kernel.identity.user == service.pw_name

            assert await probe(carol_kernel, host_listener) == [host_listener.token]
            assert await probe(dave_kernel, host_listener) == ["ECONNREFUSED"]

            # A kernelspec marked as having the network has it for everyone.
            online = await pool.kernel_for("nb-d2", "online", dave, dave_folder)
            assert online.network
            assert await probe(online, host_listener) == [host_listener.token]
    finally:
        shutil.rmtree(specs, ignore_errors=True)


async def test_sandbox_off_gives_every_kernel_the_network(
    unix_accounts: UnixAccounts,
    pool_factory: PoolFactory,
    folder_for: Callable[..., Path],
    host_listener: Listener,
) -> None:
    service = unix_accounts.add()
    dave = KernelOwner("dave", unix=False)
    pool = pool_factory(pool_size=0, kernel_user=service.pw_name, sandbox_kernels=False)
    async with pool:
        kernel = await pool.kernel_for("nb", "python3", dave, folder_for(dave, service.pw_name))
        assert kernel.network
        assert await probe(kernel, host_listener) == [host_listener.token]


PROBE_AS_USER = """
import errno, json, os, socket, sys
sock = socket.socket()
sock.settimeout(10)
try:
    sock.connect(("127.0.0.1", int(sys.argv[1])))
    got = sock.recv(100).decode()
except OSError as error:
    got = errno.errorcode.get(error.errno or 0, type(error).__name__)
caps = [line.split()[1] for line in open("/proc/self/status") if line.startswith("CapEff")]
print(json.dumps({"got": got, "uid": os.getuid(), "caps": caps[0]}))
"""


async def test_a_server_that_is_not_root_sandboxes_kernels_in_a_user_namespace(
    unix_accounts: UnixAccounts, host_listener: Listener
) -> None:
    """As a non-root user, the sandbox makes a user namespace too; the kernel keeps its uid,
    has no capabilities, and reaches nothing of the host's."""
    user = unix_accounts.add()
    argv = kernels.sandbox.command(
        user.pw_uid,
        user.pw_gid,
        [],
        [sys.executable, "-I", "-c", PROBE_AS_USER, str(host_listener.port)],
    )
    process = await asyncio.create_subprocess_exec(
        *argv,
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
        cwd="/",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(TIMEOUT):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert json.loads(out) == {"got": "ECONNREFUSED", "uid": user.pw_uid, "caps": "0" * 16}
    # Reached with the network, the same listener answers: the refusal was the namespace.
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-c", PROBE_AS_USER, str(host_listener.port),
        user=user.pw_uid, group=user.pw_gid, extra_groups=[], cwd="/",
        stdout=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(TIMEOUT):
        out, _ = await process.communicate()
    assert json.loads(out)["got"] == host_listener.token


#: A whole pool run by a user who is not root: its kernel's view of the host's listener.
POOL_AS_USER = """
import asyncio, json, sys
from pathlib import Path
from kernels.identity import KernelOwner
from kernels.pool import KernelPool
from tests.kernels.conftest import execute
from tests.kernels.listeners import Listener, probe_code

async def main():
    listener = Listener("127.0.0.1", int(sys.argv[1]), "")
    async with KernelPool(pool_size=0, check_interval=0.2) as pool:
        owner = KernelOwner("someone", unix=False)
        kernel = await pool.kernel_for("nb", "python3", owner, Path.home())
        code = probe_code(listener) + "import os; print(os.getuid())"
        result = await execute(kernel.client, code)
        got, uid = result.stdout.splitlines()
        print(json.dumps({"network": kernel.network, "got": json.loads(got), "uid": int(uid)}))

asyncio.run(main())
"""


async def test_a_pool_run_by_a_user_who_is_not_root_still_sandboxes_its_kernels(
    unix_accounts: UnixAccounts, host_listener: Listener
) -> None:
    user = unix_accounts.add()
    env = {"PATH": os.environ["PATH"], "HOME": user.pw_dir, "PYTHONPATH": str(WORKTREE)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", POOL_AS_USER, str(host_listener.port),
        user=user.pw_uid, group=user.pw_gid, extra_groups=[], cwd=user.pw_dir, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(TIMEOUT):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()[-3000:]
    assert json.loads(out) == {"network": False, "got": ["ECONNREFUSED"], "uid": user.pw_uid}


def test_the_sandbox_refuses_root_and_says_why() -> None:
    argv = kernels.sandbox.command(0, 0, [], [sys.executable, "-c", "print('ran')"])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 126
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "kernels.sandbox: cannot start the kernel without network: refusing to run a kernel "
        "as root"
    ]
