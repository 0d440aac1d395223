"""Reading a real ipykernel's channels with KernelChannels, without an executor.

The kernel is a real python3 ipykernel over ipc; the callbacks collect what
they are handed, and the tests wait on those with timeouts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager

from kernels.channels import KernelChannels
from kernels.errors import KernelUnavailable
from kernels.outputs import IopubMessage

pytestmark = pytest.mark.asyncio(loop_scope="module")

TIMEOUT = 30


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def manager(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncKernelManager]:
    folder = tmp_path_factory.mktemp("channels")
    km = AsyncKernelManager(kernel_name="python3", transport="ipc")
    km.ip = str(folder / "kernel")
    km.connection_file = str(folder / "kernel.json")
    await km.start_kernel()
    yield km
    await km.shutdown_kernel(now=True)


@pytest_asyncio.fixture(loop_scope="module")
async def client(manager: AsyncKernelManager) -> AsyncIterator[AsyncKernelClient]:
    kc = manager.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=TIMEOUT)
    yield kc
    kc.stop_channels()


class Collected:
    """What the callbacks were handed; ``changed`` is set after each message."""

    def __init__(self) -> None:
        self.iopub: list[IopubMessage] = []
        self.replies: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    def on_iopub(self, message: IopubMessage) -> None:
        self.iopub.append(message)
        self.changed.set()

    def on_reply(self, msg: dict[str, Any]) -> None:
        self.replies.append(msg)
        self.changed.set()

    async def wait(self, predicate: Any) -> None:
        async with asyncio.timeout(TIMEOUT):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    def idle(self, msg_id: str) -> bool:
        return any(
            m.parent_id == msg_id
            and m.msg_type == "status"
            and m.parse()["execution_state"] == "idle"
            for m in self.iopub
        )

    def reply(self, msg_id: str) -> dict[str, Any] | None:
        return next((r for r in self.replies if r["parent_header"]["msg_id"] == msg_id), None)


async def test_messages_reach_the_callbacks_and_probes_are_answered(
    client: AsyncKernelClient,
) -> None:
    seen = Collected()
    channels = KernelChannels("nb-ch", seen.on_iopub, seen.on_reply)
    channels.attach(client)
    try:
        async with asyncio.timeout(TIMEOUT):
            info = await channels.probe()
        assert info["implementation"] == "ipython"
        assert channels.readers_ok
        msg_id = client.execute("print('hello')", allow_stdin=False)
        await seen.wait(lambda: seen.idle(msg_id) and seen.reply(msg_id) is not None)
        streams = [m.parse()["text"] for m in seen.iopub if m.msg_type == "stream"]
        assert streams == ["hello\n"]
        reply = seen.reply(msg_id)
        assert reply is not None and reply["msg_type"] == "execute_reply"
        assert reply["content"]["status"] == "ok"
        # kernel_info replies answer probes; the callback never sees them
        assert all(r["msg_type"] != "kernel_info_reply" for r in seen.replies)
        assert channels.last_message_at > 0
    finally:
        await channels.close()
    assert not channels.readers_ok and channels.client is None
    with pytest.raises(KernelUnavailable):
        await channels.probe()


async def test_a_callback_that_raises_does_not_stop_the_reading(client: AsyncKernelClient) -> None:
    seen = Collected()
    failures = 0

    def flaky(message: IopubMessage) -> None:
        nonlocal failures
        if message.msg_type == "stream" and failures == 0:
            failures += 1
            raise RuntimeError("a bug in a handler")
        seen.on_iopub(message)

    channels = KernelChannels("nb-ch", flaky, seen.on_reply)
    channels.attach(client)
    try:
        first = client.execute("print('one')")
        await seen.wait(lambda: seen.idle(first))
        second = client.execute("print('two')")
        await seen.wait(lambda: seen.idle(second))
        streams = [m.parse()["text"] for m in seen.iopub if m.msg_type == "stream"]
        assert failures == 1 and streams == ["two\n"]
        assert channels.readers_ok
    finally:
        await channels.close()


async def test_attach_replaces_the_client_it_reads(
    manager: AsyncKernelManager, client: AsyncKernelClient
) -> None:
    seen = Collected()
    channels = KernelChannels("nb-ch", seen.on_iopub, seen.on_reply)
    channels.attach(client)
    new = manager.client()  # as the pool's restart hands out a new client
    new.start_channels()
    try:
        await new.wait_for_ready(timeout=TIMEOUT)
        channels.attach(new)
        assert channels.client is new and channels.readers_ok
        msg_id = new.execute("1 + 1")
        await seen.wait(lambda: seen.reply(msg_id) is not None)
        assert tasks_named("executor-") == 3  # the old client's readers are gone
    finally:
        await channels.close()
        new.stop_channels()
    assert tasks_named("executor-") == 0


def tasks_named(prefix: str) -> int:
    return sum(
        1 for t in asyncio.all_tasks() if t.get_name().startswith(prefix) and not t.done()
    )
