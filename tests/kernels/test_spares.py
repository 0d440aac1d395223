"""The spare kernels alone, with real ipykernel processes from a real KernelLauncher.

No pool: :class:`kernels.spares.SpareKernels` is given the launcher's start
and a stop that the test awaits, and its bookkeeping is checked against
the processes it started.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import zmq.asyncio
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from traitlets.config import LoggingConfigurable

from kernels.identity import KernelIdentity, KernelOwner, make_runtime_root, resolve_identity
from kernels.launch import ResourceLimits
from kernels.process import KernelLauncher, KernelProcess
from kernels.spares import SpareKernels, SpareKey

from .conftest import TIMEOUT, alive

pytestmark = pytest.mark.asyncio(loop_scope="module")

BROKEN = KernelSpec(argv=["/bin/false"], display_name="broken", language="python")


@dataclass
class Harness:
    launcher: KernelLauncher
    identity: KernelIdentity
    stopping: list[asyncio.Task[None]] = field(default_factory=list)
    stopped: list[KernelProcess] = field(default_factory=list)

    def launch(self, key: SpareKey) -> Coroutine[Any, Any, KernelProcess]:
        identity, kernel_name, network = key
        specs = self.launcher.specs
        spec = BROKEN if kernel_name == "broken" else specs.get_kernel_spec(kernel_name)
        return self.launcher.start(identity, kernel_name, spec, Path("/"), network)

    def stop_later(self, process: KernelProcess, name: str) -> None:
        self.stopped.append(process)
        self.stopping.append(asyncio.create_task(self.launcher.stop(process, now=True)))

    async def settle(self) -> None:
        await asyncio.gather(*self.stopping)


@pytest_asyncio.fixture(loop_scope="module")
async def harness() -> AsyncIterator[Harness]:
    folder = Path(tempfile.mkdtemp(prefix="cs-spares-", dir="/tmp"))
    folder.chmod(0o755)
    context = zmq.asyncio.Context()
    parent = LoggingConfigurable()
    launcher = KernelLauncher(
        parent=parent,
        runtime=make_runtime_root(folder / "runtime"),
        context=context,
        specs=KernelSpecManager(parent=parent),
        limits=ResourceLimits(),
        startup_timeout=TIMEOUT,
    )
    identity = resolve_identity(KernelOwner("", unix=False), "nobody")
    h = Harness(launcher, identity)
    try:
        yield h
    finally:
        await h.settle()
        context.destroy(linger=0)
        shutil.rmtree(folder, ignore_errors=True)


def spares_for(h: Harness) -> SpareKernels:
    return SpareKernels(h.launch, h.stop_later, logging.getLogger("test-spares"))


async def test_spares_are_counted_claimed_and_evicted(harness: Harness) -> None:
    spares = spares_for(harness)
    key = (harness.identity, "python3", False)
    spares.start(key, prewarmed=False)
    spares.start(key, prewarmed=False)
    assert spares.count(key) == 2 and spares.total == 2 and spares.ready_count() == 0
    async with asyncio.timeout(TIMEOUT):
        await spares.wait()
    assert spares.ready_count("python3") == 2 and spares.ready_count("other") == 0

    claimed = spares.claim(key)
    assert isinstance(claimed, KernelProcess) and alive(claimed.pid) and not claimed.network
    assert spares.count(key) == 1
    assert spares.claim((harness.identity, "other", False)) is None
    # A spare without network is never handed to a kernel that has it.
    assert spares.claim((harness.identity, "python3", True)) is None

    assert spares.evict_one()
    assert spares.total == 0 and not spares.evict_one()
    harness.stop_later(claimed, "test")
    await harness.settle()
    assert all(not alive(p.pid) for p in harness.stopped)


async def test_a_spare_still_starting_can_be_claimed(harness: Harness) -> None:
    spares = spares_for(harness)
    spares.start((harness.identity, "python3", True), prewarmed=True)
    assert spares.claim((harness.identity, "python3", False)) is None
    claimed = spares.claim((harness.identity, "python3", True))
    assert isinstance(claimed, asyncio.Task)
    assert spares.total == 0  # it is the claimer's now, not a spare
    async with asyncio.timeout(TIMEOUT):
        process = await claimed
    assert alive(process.pid) and spares.ready_count() == 0
    harness.stop_later(process, "test")


async def test_old_prewarmed_spares_are_dropped_other_spares_kept(harness: Harness) -> None:
    spares = spares_for(harness)
    spares.start((harness.identity, "python3", False), prewarmed=True)
    spares.start((harness.identity, "python3", False), prewarmed=False)
    async with asyncio.timeout(TIMEOUT):
        await spares.wait()
    two_minutes_later = time.monotonic() + 120  # ``started`` is a monotonic time
    await spares.drop_unusable(two_minutes_later, max_age=60)
    assert spares.ready_count() == 1  # only the prewarmed one was too old
    [left] = spares.take_all()
    assert left not in harness.stopped and alive(left.pid)
    harness.stop_later(left, "test")


async def test_a_failed_start_is_logged_and_not_retried_at_once(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    spares = spares_for(harness)
    key = (harness.identity, "broken", False)
    spares.start(key, prewarmed=False)
    async with asyncio.timeout(TIMEOUT):
        await spares.wait()
    assert spares.total == 0 and spares.failed_recently(key)
    assert not spares.failed_recently((harness.identity, "python3", False))
    assert "a spare broken kernel failed to start" in caplog.text


async def test_a_spare_ready_after_the_pool_stopped_is_stopped(harness: Harness) -> None:
    spares = spares_for(harness)
    spares.start((harness.identity, "python3", False), prewarmed=False)
    spares.accepting = False
    async with asyncio.timeout(TIMEOUT):
        await spares.wait()
    assert spares.total == 0 and len(harness.stopped) == 1
    await harness.settle()
    assert not alive(harness.stopped[0].pid)
