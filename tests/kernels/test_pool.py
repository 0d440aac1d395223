"""The kernel pool with real ipykernel kernels: start, share, spares, limits, culling, death."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kernels.errors import (
    KernelLimitReached,
    KernelStartFailed,
    NoSuchKernel,
    NoSuchKernelSpec,
)
from kernels.identity import KernelOwner
from kernels.pool import KernelPool, ManagedKernel

from .conftest import TIMEOUT, alive, execute, kernel_children, wait_for_output

ALICE = KernelOwner("alice", unix=False)
BOB = KernelOwner("bob", unix=False)
CAROL = KernelOwner("carol", unix=False)

PoolFactory = Callable[..., KernelPool]
FolderFor = Callable[[KernelOwner], Path]


async def test_kernel_starts_in_folder_and_runs_code(
    pool_factory: PoolFactory, folder_for: FolderFor
) -> None:
    folder = folder_for(ALICE)
    async with pool_factory(pool_size=0) as pool:
        kernel = await pool.kernel_for("nb-1", "python3", ALICE, folder)
        assert not kernel.from_spare
        assert kernel.notebook_id == "nb-1" and kernel.owner == ALICE
        assert kernel.kernel_name == "python3" and await kernel.is_alive()
        assert pool.get("nb-1") is kernel

        result = await execute(kernel.client, "1+1")
        assert result.reply["status"] == "ok"
        assert result.value == "2"

        where = await execute(kernel.client, "import os; print(os.getcwd(), os.getpid())")
        assert where.stdout.split() == [str(folder), str(kernel.pid)]

        # The transport is ipc, with the connection file in the pool's private folder.
        info = json.loads(Path(kernel.manager.connection_file).read_text())
        assert info["transport"] == "ipc"
        assert Path(info["ip"]).parent == Path(kernel.manager.connection_file).parent


async def test_one_kernel_per_notebook_even_when_asked_at_once(
    pool_factory: PoolFactory, folder_for: FolderFor
) -> None:
    folder = folder_for(ALICE)
    async with pool_factory(pool_size=0) as pool:
        kernels = await asyncio.gather(
            pool.kernel_for("nb-a", "python3", ALICE, folder),
            pool.kernel_for("nb-a", "python3", ALICE, folder),
            pool.kernel_for("nb-b", "python3", ALICE, folder),
            pool.kernel_for("nb-a", "python3", ALICE, folder),
        )
        first, again, other, third = kernels
        assert first is again is third
        assert other is not first and other.pid != first.pid and other.id != first.id
        # No double start: exactly two kernel processes exist.
        assert kernel_children() == {first.pid, other.pid}
        # Asking later still gives the same kernel.
        assert await pool.kernel_for("nb-a", "python3", ALICE, folder) is first
        await pool.shutdown("nb-b")
        assert pool.get("nb-b") is None and not alive(other.pid)
        with pytest.raises(NoSuchKernel):
            await pool.shutdown("nb-b")


async def _open_and_run(
    pool: KernelPool, notebook_id: str, folder: Path
) -> tuple[ManagedKernel, float]:
    started = time.perf_counter()
    kernel = await pool.kernel_for(notebook_id, "python3", ALICE, folder)
    result = await execute(kernel.client, "import os; os.getcwd()")
    elapsed = time.perf_counter() - started
    assert result.value == repr(str(folder))
    return kernel, elapsed


async def test_warm_start_takes_the_spare_and_moves_it(
    pool_factory: PoolFactory, folder_for: FolderFor
) -> None:
    folder = folder_for(ALICE)
    async with pool_factory(pool_size=0) as cold_pool:
        cold, cold_time = await _open_and_run(cold_pool, "nb-cold", folder)
        assert not cold.from_spare

    async with pool_factory(pool_size=1) as pool:
        async with asyncio.timeout(TIMEOUT):
            await pool.wait_for_spares()
        assert pool.spare_count("python3") == 1
        spare_pids = kernel_children()
        warm, warm_time = await _open_and_run(pool, "nb-warm", folder)
        assert warm.from_spare
        assert warm.pid in spare_pids  # the very process that was pre-started
        # The pool starts a new spare to replace the one taken.
        async with asyncio.timeout(TIMEOUT):
            await pool.wait_for_spares()
        assert pool.spare_count() == 1
    print(f"\nopen notebook -> first result: cold {cold_time:.3f} s, warm {warm_time:.3f} s")


async def test_prewarm_starts_one_spare_for_the_owner(
    pool_factory: PoolFactory, folder_for: FolderFor
) -> None:
    folder = folder_for(ALICE)
    async with pool_factory(pool_size=0) as pool:
        pool.prewarm(ALICE)
        pool.prewarm(ALICE)  # bounded: one spare per identity and kernelspec
        pool.prewarm(ALICE, "no-such-kernel")  # logged, never raised
        async with asyncio.timeout(TIMEOUT):
            await pool.wait_for_spares()
        assert pool.spare_count() == 1 and len(kernel_children()) == 1
        kernel = await pool.kernel_for("nb-1", "python3", ALICE, folder)
        assert kernel.from_spare and pool.spare_count() == 0
        assert (await execute(kernel.client, "import os; os.getcwd()")).value == repr(str(folder))


async def test_total_and_per_user_limits(pool_factory: PoolFactory, folder_for: FolderFor) -> None:
    folder = folder_for(ALICE)
    async with pool_factory(pool_size=0, max_kernels=2, max_kernels_per_user=1) as pool:
        with pytest.raises(NoSuchKernelSpec, match="no-such-kernel"):
            await pool.kernel_for("nb-0", "no-such-kernel", ALICE, folder)
        await pool.kernel_for("nb-1", "python3", ALICE, folder)
        with pytest.raises(KernelLimitReached, match="user 'alice'") as per_user:
            await pool.kernel_for("nb-2", "python3", ALICE, folder)
        assert per_user.value.scope == "user" and per_user.value.limit == 1
        await pool.kernel_for("nb-3", "python3", BOB, folder)
        with pytest.raises(KernelLimitReached, match="maximum of 2 kernels") as total:
            await pool.kernel_for("nb-4", "python3", CAROL, folder)
        assert total.value.scope == "total"
        # A refused request started nothing; freeing a kernel makes room again.
        assert len(kernel_children()) == 2
        await pool.shutdown("nb-1")
        await pool.kernel_for("nb-4", "python3", CAROL, folder)


async def test_spares_count_towards_the_limit_and_make_room(
    pool_factory: PoolFactory, folder_for: FolderFor
) -> None:
    folder = folder_for(ALICE)
    async with pool_factory(pool_size=1, max_kernels=1) as pool:
        async with asyncio.timeout(TIMEOUT):
            await pool.wait_for_spares()
        kernel = await pool.kernel_for("nb-1", "python3", ALICE, folder)
        assert kernel.from_spare
        assert pool.spare_count() == 0  # no room for a replacement
        with pytest.raises(KernelLimitReached):
            await pool.kernel_for("nb-2", "python3", BOB, folder)


def _kernelspec(root: Path, name: str, code: str) -> None:
    spec = root / "kernels" / name
    spec.mkdir(parents=True)
    argv = [sys.executable, "-c", code, "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": name, "language": "python"})
    )


async def test_start_failures_say_why_and_leave_nothing(
    pool_factory: PoolFactory,
    folder_for: FolderFor,
    notebook_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    specs = notebook_root / "share"
    _kernelspec(specs, "crashes", "import sys; print('no such luck', file=sys.stderr); sys.exit(3)")
    _kernelspec(specs, "hangs", "import time; time.sleep(600)")
    monkeypatch.setenv("JUPYTER_PATH", str(specs))
    folder = folder_for(ALICE)
    async with pool_factory(pool_size=0, startup_timeout=2) as pool:
        with pytest.raises(KernelStartFailed, match="not ready within 2 s"):
            await pool.kernel_for("nb-1", "hangs", ALICE, folder)
        assert pool.get("nb-1") is None and kernel_children() == set()
    async with pool_factory(pool_size=0) as pool:
        with pytest.raises(KernelStartFailed, match="exited with code 3") as crashed:
            await pool.kernel_for("nb-2", "crashes", ALICE, folder)
        assert "no such luck" in crashed.value.reason
        assert pool.get("nb-2") is None and kernel_children() == set()
        # The pool still works.
        kernel = await pool.kernel_for("nb-3", "python3", ALICE, folder)
        assert (await execute(kernel.client, "1+1")).value == "2"


async def test_idle_kernel_is_culled_and_reported(
    pool_factory: PoolFactory, folder_for: FolderFor
) -> None:
    folder = folder_for(ALICE)
    culled: asyncio.Queue[str] = asyncio.Queue()
    async with pool_factory(pool_size=0, cull_idle_after=1.0) as pool:

        async def report(notebook_id: str) -> None:
            await culled.put(notebook_id)

        pool.on_kernel_culled(report)

        idle = await pool.kernel_for("nb-idle", "python3", ALICE, folder)
        busy = await pool.kernel_for("nb-busy", "python3", ALICE, folder)
        busy.set_busy(True)  # e.g. a long-running cell: never culled
        async with asyncio.timeout(TIMEOUT):
            assert await culled.get() == "nb-idle"
        assert pool.get("nb-idle") is None
        assert idle.status == "stopped" and not alive(idle.pid)
        assert pool.get("nb-busy") is busy and await busy.is_alive()
        assert culled.empty()


async def test_hooks_unregister_and_a_failing_hook_is_logged_not_fatal(
    pool_factory: PoolFactory, folder_for: FolderFor, caplog: pytest.LogCaptureFixture
) -> None:
    folder = folder_for(ALICE)
    culled: asyncio.Queue[str] = asyncio.Queue()
    unregistered: list[str] = []
    async with pool_factory(pool_size=0, cull_idle_after=1.0) as pool:

        async def broken(notebook_id: str) -> None:
            raise RuntimeError("a broken hook")

        async def gone(notebook_id: str) -> None:
            unregistered.append(notebook_id)

        async def report(notebook_id: str) -> None:
            await culled.put(notebook_id)

        pool.on_kernel_culled(broken)
        unregister = pool.on_kernel_culled(gone)
        pool.on_kernel_culled(report)
        unregister()
        unregister()  # twice is harmless
        await pool.kernel_for("nb-idle", "python3", ALICE, folder)
        async with asyncio.timeout(TIMEOUT):
            assert await culled.get() == "nb-idle"
            while "a broken hook" not in caplog.text:
                await asyncio.sleep(0.05)  # the failing task's log line, bounded by the timeout
        assert unregistered == []
        assert "kernel-culled-callback failed" in caplog.text


async def test_killed_kernel_is_reported_and_restarts(
    pool_factory: PoolFactory, folder_for: FolderFor
) -> None:
    folder = folder_for(ALICE)
    died: asyncio.Queue[tuple[str, ManagedKernel, float]] = asyncio.Queue()
    async with pool_factory(pool_size=0, check_interval=0.5) as pool:

        async def report(notebook_id: str, kernel: ManagedKernel) -> None:
            await died.put((notebook_id, kernel, time.perf_counter()))

        pool.on_kernel_died(report)

        kernel = await pool.kernel_for("nb-1", "python3", ALICE, folder)
        await execute(kernel.client, "x = 42")
        old_pid, old_id = kernel.pid, kernel.id

        killed_at = time.perf_counter()
        os.kill(old_pid, signal.SIGKILL)
        async with asyncio.timeout(10):
            notebook_id, reported, reported_at = await died.get()
        assert notebook_id == "nb-1" and reported is kernel
        assert reported.status == "dead" and reported.exit_code == -signal.SIGKILL
        assert not await kernel.is_alive()
        print(f"\nSIGKILL detected after {reported_at - killed_at:.2f} s")

        restarted = await pool.restart("nb-1")
        assert restarted is kernel and kernel.status == "alive"
        assert kernel.id == old_id and kernel.pid != old_pid
        fresh = await execute(kernel.client, "x")
        assert fresh.reply["ename"] == "NameError"  # a new process
        assert (await execute(kernel.client, "import os; os.getcwd()")).value == repr(str(folder))

        # A live kernel restarts too, politely.
        pid = kernel.pid
        await pool.restart("nb-1")
        assert kernel.pid != pid and not alive(pid)
        assert (await execute(kernel.client, "1+1")).value == "2"
        assert died.empty()


async def test_interrupt_stops_a_busy_loop(
    pool_factory: PoolFactory, folder_for: FolderFor
) -> None:
    async with pool_factory(pool_size=0) as pool:
        kernel = await pool.kernel_for("nb-1", "python3", ALICE, folder_for(ALICE))
        client = kernel.client
        # stop_on_error=False: otherwise ipykernel aborts the requests that follow the error.
        msg_id = client.execute(
            "print('looping', flush=True)\nwhile True: pass", stop_on_error=False
        )
        # Interrupt once the cell's code runs: a SIGINT that lands while ipykernel is
        # still setting up the execution can be lost (ipykernel's behaviour, not the pool's).
        await wait_for_output(client, msg_id, "looping")
        await pool.interrupt("nb-1")
        async with asyncio.timeout(TIMEOUT):
            while True:
                reply: dict[str, Any] = await client.get_shell_msg()
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert (await execute(client, "1+1")).value == "2"


async def test_exit_leaves_no_kernel_process(
    pool_factory: PoolFactory, folder_for: FolderFor
) -> None:
    folder = folder_for(ALICE)
    async with pool_factory(pool_size=1) as pool:
        first = await pool.kernel_for("nb-1", "python3", ALICE, folder)
        second = await pool.kernel_for("nb-2", "python3", BOB, folder)
        # A process the kernel left running in the background.
        spawned = await execute(
            first.client,
            "import subprocess; print(subprocess.Popen(['sleep', '600']).pid)",
        )
        sleeper = int(spawned.stdout)
        async with asyncio.timeout(TIMEOUT):
            await pool.wait_for_spares()
        pids = kernel_children() | {first.pid, second.pid, sleeper}
        assert len(pids) == 4  # two kernels, one spare, one background process
        runtime = Path(first.manager.connection_file).parent.parent
        assert all(alive(pid) for pid in pids)
    assert [pid for pid in pids if alive(pid)] == []
    assert kernel_children() == set()
    assert not runtime.exists()


async def test_a_spare_of_a_kernelspec_changed_since_is_not_handed_out(
    pool_factory: PoolFactory, folder_for: FolderFor, tmp_path: Path
) -> None:
    """``collab-server kernels add python3 ...`` on a running server: spares already started
    run the old program, so the next notebook gets a kernel of the new one."""
    specs = tmp_path / "specs"
    specs.mkdir()
    specs.chmod(0o755)
    async with pool_factory(pool_size=1, extra_kernel_dirs=[str(specs)]) as pool:
        async with asyncio.timeout(TIMEOUT):
            await pool.wait_for_spares()
        spare_pids = kernel_children()
        (specs / "python3").mkdir()
        (specs / "python3" / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "Python 3 (changed)",
                    "language": "python",
                    "env": {"COLLAB_SPEC": "changed"},
                }
            )
        )
        kernel = await pool.kernel_for("nb", "python3", ALICE, folder_for(ALICE))
        assert not kernel.from_spare and kernel.pid not in spare_pids
        result = await execute(kernel.client, "import os; print(os.environ.get('COLLAB_SPEC'))")
        assert result.stdout.strip() == "changed"
        async with asyncio.timeout(TIMEOUT):
            while any(alive(pid) for pid in spare_pids):  # the stale spare is stopped
                await asyncio.sleep(0.05)
