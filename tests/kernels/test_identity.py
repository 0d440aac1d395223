"""Who kernels run as, what they can read, and their resource limits (needs root, as on CI).

Every account is a throwaway one made with ``useradd -m`` and deleted with
``userdel -r`` after the test.
"""

from __future__ import annotations

import asyncio
import grp
import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from kernels.errors import KernelIdentityError, KernelStartFailed
from kernels.identity import KernelOwner, kernel_account, prepare_home, resolve_identity
from kernels.pool import KernelPool, ManagedKernel

from .conftest import TIMEOUT, UnixAccounts, execute

PoolFactory = Callable[..., KernelPool]


async def _ids(kernel: ManagedKernel) -> dict[str, object]:
    code = (
        "import os, json; print(json.dumps({'uid': os.getuid(), 'euid': os.geteuid(), "
        "'gid': os.getgid(), 'groups': sorted(os.getgroups()), 'cwd': os.getcwd(), "
        "'env': dict(os.environ)}))"
    )
    result = await execute(kernel.client, code)
    assert result.reply["status"] == "ok", result.reply
    found: dict[str, object] = json.loads(result.stdout)
    return found


async def _error_name(kernel: ManagedKernel, code: str) -> str | None:
    """The exception name ``code`` raised in the kernel, or None if it ran without error."""
    result = await execute(kernel.client, code)
    name = result.reply.get("ename")
    return None if name is None else str(name)


async def test_unix_owner_kernel_runs_as_owner_and_is_private(
    unix_accounts: UnixAccounts,
    pool_factory: PoolFactory,
    notebook_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    group = unix_accounts.add_group()
    alice = unix_accounts.add(groups=(group,))
    bob = unix_accounts.add()
    service = unix_accounts.add()
    alice_owner = KernelOwner(alice.pw_name, unix=True)
    bob_owner = KernelOwner(bob.pw_name, unix=True)
    monkeypatch.setenv("COLLAB_TEST_SERVER_SECRET", "do-not-leak")

    alice_folder = notebook_root / alice.pw_name
    bob_folder = notebook_root / bob.pw_name
    prepare_home(alice_folder, alice_owner)
    prepare_home(bob_folder, bob_owner)
    (alice_folder / "private.txt").write_text("alice's notes")
    folder_stat = alice_folder.stat()
    assert (folder_stat.st_uid, folder_stat.st_gid) == (alice.pw_uid, alice.pw_gid)
    assert stat.S_IMODE(folder_stat.st_mode) == 0o700

    async with pool_factory(pool_size=0, kernel_user=service.pw_name) as pool:
        alice_kernel, bob_kernel = await asyncio.gather(
            pool.kernel_for("nb-alice", "python3", alice_owner, alice_folder),
            pool.kernel_for("nb-bob", "python3", bob_owner, bob_folder),
        )
        ids = await _ids(alice_kernel)
        assert ids["uid"] == ids["euid"] == alice.pw_uid
        assert ids["gid"] == alice.pw_gid
        assert grp.getgrnam(group).gr_gid in ids["groups"]  # type: ignore[operator]
        assert ids["cwd"] == str(alice_folder)
        env = ids["env"]
        assert isinstance(env, dict)
        assert env["HOME"] == alice.pw_dir
        assert env["USER"] == env["LOGNAME"] == alice.pw_name
        assert "COLLAB_TEST_SERVER_SECRET" not in env

        # The connection file: 0600, owned by alice, in her own 0700 folder with the sockets.
        connection_file = Path(alice_kernel.manager.connection_file)
        file_stat = connection_file.stat()
        assert file_stat.st_uid == alice.pw_uid and stat.S_IMODE(file_stat.st_mode) == 0o600
        runtime = connection_file.parent
        assert runtime.stat().st_uid == alice.pw_uid
        assert runtime.stat().st_mode & 0o777 == 0o700  # jupyter_client adds the sticky bit
        info = json.loads(connection_file.read_text())
        assert info["transport"] == "ipc"
        sockets = [
            Path(f"{info['ip']}-{info['shell_port']}"),
            Path(f"{info['ip']}-{info['iopub_port']}"),
        ]
        assert all(s.parent == runtime and s.stat().st_uid == alice.pw_uid for s in sockets)

        # Alice reads her own things; Bob's kernel can read none of them.
        assert await _error_name(alice_kernel, "open('private.txt').read()") is None
        assert await _error_name(alice_kernel, f"os.listdir({alice.pw_dir!r})") is None
        for code in (
            f"os.listdir({alice.pw_dir!r})",
            f"os.listdir({str(alice_folder)!r})",
            f"open({str(alice_folder / 'private.txt')!r}).read()",
            f"open({str(connection_file)!r}).read()",
            f"os.listdir({str(runtime)!r})",
        ):
            assert await _error_name(bob_kernel, f"import os; {code}") == "PermissionError", code
        bob_ids = await _ids(bob_kernel)
        assert bob_ids["uid"] == bob.pw_uid

        # The folder is entered as the kernel's user, not as root: no way into alice's.
        with pytest.raises(KernelStartFailed, match="Permission denied"):
            await pool.kernel_for("nb-sneaky", "python3", bob_owner, alice_folder)


async def test_other_owners_run_as_the_service_account_never_root(
    unix_accounts: UnixAccounts, pool_factory: PoolFactory, notebook_root: Path
) -> None:
    service = unix_accounts.add()
    web_user = KernelOwner("someone@example.org", unix=False)
    ghost = KernelOwner("no-such-account-here", unix=True)
    for owner in (web_user, ghost):
        identity = resolve_identity(owner, service.pw_name)
        assert (identity.uid, identity.user) == (service.pw_uid, service.pw_name)
    with pytest.raises(KernelIdentityError, match="root"):
        resolve_identity(KernelOwner("root", unix=True), service.pw_name)
    with pytest.raises(KernelIdentityError, match="root"):
        resolve_identity(web_user, "root")
    with pytest.raises(KernelIdentityError, match="does not exist"):
        resolve_identity(web_user, "no-such-service-account")

    folder = notebook_root / "web-users"
    prepare_home(folder, web_user, service.pw_name)
    assert folder.stat().st_uid == service.pw_uid
    async with pool_factory(pool_size=0, kernel_user=service.pw_name) as pool:
        kernel = await pool.kernel_for("nb-1", "python3", web_user, folder)
        ids = await _ids(kernel)
        assert ids["uid"] == ids["euid"] == service.pw_uid != 0
        assert ids["cwd"] == str(folder)
        with pytest.raises(KernelIdentityError):
            await pool.kernel_for("nb-2", "python3", KernelOwner("root", unix=True), folder)
        assert pool.get("nb-2") is None


async def test_prewarmed_spare_runs_as_its_user_and_only_serves_them(
    unix_accounts: UnixAccounts, pool_factory: PoolFactory, notebook_root: Path
) -> None:
    alice, bob = unix_accounts.add(), unix_accounts.add()
    alice_owner = KernelOwner(alice.pw_name, unix=True)
    bob_owner = KernelOwner(bob.pw_name, unix=True)
    alice_folder, bob_folder = notebook_root / "alice", notebook_root / "bob"
    prepare_home(alice_folder, alice_owner)
    prepare_home(bob_folder, bob_owner)
    async with pool_factory(pool_size=0) as pool:
        pool.prewarm(alice_owner)  # as when alice logs in
        async with asyncio.timeout(TIMEOUT):
            await pool.wait_for_spares()
        bob_kernel = await pool.kernel_for("nb-bob", "python3", bob_owner, bob_folder)
        assert not bob_kernel.from_spare  # alice's spare is not bob's
        alice_kernel = await pool.kernel_for("nb-alice", "python3", alice_owner, alice_folder)
        assert alice_kernel.from_spare
        ids = await _ids(alice_kernel)
        assert ids["uid"] == alice.pw_uid and ids["cwd"] == str(alice_folder)
        assert (await _ids(bob_kernel))["uid"] == bob.pw_uid


FORK_BOMB = """
import os, signal, time
children, error = [], None
try:
    for _ in range(300):  # bounded: the test machine stays safe even without a limit
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        children.append(pid)
except OSError as exc:
    error = type(exc).__name__
finally:
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    for pid in children:
        os.waitpid(pid, 0)
print(len(children), error)
"""


async def test_limits_apply_to_that_kernel_only(
    unix_accounts: UnixAccounts, pool_factory: PoolFactory, notebook_root: Path
) -> None:
    alice, bob = unix_accounts.add(), unix_accounts.add()
    owners = [KernelOwner(alice.pw_name, unix=True), KernelOwner(bob.pw_name, unix=True)]
    folders = [notebook_root / o.name for o in owners]
    for owner, folder in zip(owners, folders):
        prepare_home(folder, owner)
    async with pool_factory(
        pool_size=0,
        limit_address_space=4 * 2**30,
        limit_processes=64,  # per user: a kernel has ~13 threads
        limit_open_files=256,
    ) as pool:
        alice_kernel, bob_kernel = await asyncio.gather(
            *(pool.kernel_for(f"nb-{o.name}", "python3", o, f) for o, f in zip(owners, folders))
        )
        limits = await execute(
            alice_kernel.client,
            "import resource as r; print([r.getrlimit(x) for x in "
            "(r.RLIMIT_AS, r.RLIMIT_NPROC, r.RLIMIT_NOFILE, r.RLIMIT_CPU)])",
        )
        assert limits.stdout.strip() == str([(4 * 2**30,) * 2, (64, 64), (256, 256), (-1, -1)])

        # 100 GB: refused inside alice's kernel, which keeps working.
        assert await _error_name(alice_kernel, "x = bytearray(100 * 2**30)") == "MemoryError"
        # A fork bomb stops at the process limit.
        bomb = await execute(alice_kernel.client, FORK_BOMB)
        forked, error = bomb.stdout.split()
        assert error == "BlockingIOError" and int(forked) < 64
        # Too many open files.
        files = "handles = [open(os.devnull) for _ in range(1000)]"
        assert await _error_name(alice_kernel, f"import os; {files}") == "OSError"
        assert (await execute(alice_kernel.client, "handles = None; 1+1")).value == "2"

        # Bob's kernel was never affected.
        assert await alice_kernel.is_alive() and await bob_kernel.is_alive()
        assert (await execute(bob_kernel.client, "len(bytearray(2**28))")).value == str(2**28)


async def test_cpu_limit_kills_only_that_kernel(
    unix_accounts: UnixAccounts, pool_factory: PoolFactory, notebook_root: Path
) -> None:
    alice, bob = unix_accounts.add(), unix_accounts.add()
    owners = [KernelOwner(alice.pw_name, unix=True), KernelOwner(bob.pw_name, unix=True)]
    folders = [notebook_root / o.name for o in owners]
    for owner, folder in zip(owners, folders):
        prepare_home(folder, owner)
    died: asyncio.Queue[str] = asyncio.Queue()
    async with pool_factory(pool_size=0, limit_cpu_seconds=4) as pool:

        async def report(notebook_id: str, kernel: ManagedKernel) -> None:
            await died.put(notebook_id)

        pool.on_kernel_died(report)

        alice_kernel, bob_kernel = await asyncio.gather(
            *(pool.kernel_for(f"nb-{o.name}", "python3", o, f) for o, f in zip(owners, folders))
        )
        alice_kernel.client.execute("while True: pass")
        async with asyncio.timeout(TIMEOUT):
            assert await died.get() == f"nb-{alice.pw_name}"
        assert alice_kernel.exit_code is not None and alice_kernel.exit_code < 0
        assert await bob_kernel.is_alive()
        assert (await execute(bob_kernel.client, "1+1")).value == "2"


async def test_only_a_pam_login_runs_kernels_as_its_unix_account(
    unix_accounts: UnixAccounts,
) -> None:
    alice = unix_accounts.add()
    service = unix_accounts.add()
    assert kernel_account(alice.pw_name, "pam") == KernelOwner(alice.pw_name, unix=True)
    assert resolve_identity(kernel_account(alice.pw_name, "pam"), service.pw_name).uid == (
        alice.pw_uid
    )
    # Someone who logged in with OAuth (or a local account) under the same name is not
    # that unix user: their kernels run as the service account.
    for provider in ("oauth", "local"):
        owner = kernel_account(alice.pw_name, provider)
        assert owner == KernelOwner(alice.pw_name, unix=False)
        assert resolve_identity(owner, service.pw_name).uid == service.pw_uid
