"""Starting, moving, restarting and stopping one kernel process, as a given unix identity.

:class:`KernelLauncher` is the pool's tool for single processes; the pool
(:mod:`kernels.pool`) decides which to start, keep, hand out and stop.
A :class:`KernelProcess` is a jupyter_client ``AsyncKernelManager`` on the
ipc transport plus a ready ``AsyncKernelClient``: it answered
``kernel_info`` on shell and its status reached iopub, so nothing sent
afterwards is lost to a not-yet-connected socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq.asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from traitlets.config import LoggingConfigurable

from . import launch, sandbox
from .errors import KernelStartFailed
from .identity import (
    KernelIdentity,
    describe,
    kernel_env,
    popen_kwargs,
    secure_connection_file,
    user_runtime_dir,
)


class _KernelManager(AsyncKernelManager):
    """An AsyncKernelManager that starts its kernel through :mod:`kernels.launch` when needed,
    and through :mod:`kernels.sandbox` when it has no network.

    The launcher is used when the kernel runs as another user (it enters the
    notebook folder as that user, not as root) or when resource limits are set.
    ``sandboxed_as`` is the identity a kernel without network runs as: the
    process starts as the server's user, and the sandbox switches to it.
    """

    limits = launch.ResourceLimits()
    switch_user = False
    launch_cwd: str | None = None
    sandboxed_as: KernelIdentity | None = None

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        argv = super().format_kernel_cmd(extra_arguments)
        if self.switch_user or self.limits:
            argv = launch.command(self.limits, self.launch_cwd, argv)
        who = self.sandboxed_as
        if who is not None:
            argv = sandbox.command(who.uid, who.gid, who.groups, argv)
        return argv


@dataclass(eq=False)
class KernelProcess:
    """One started kernel process, its manager and its ready client.

    ``client`` and ``pid`` change when the process is relaunched; ``cwd``
    when a spare is moved. ``started`` is a ``time.monotonic()`` value.
    ``network``: False when it runs in its own network namespace (loopback only).
    """

    manager: _KernelManager
    client: AsyncKernelClient
    identity: KernelIdentity
    spec: KernelSpec
    kernel_name: str
    cwd: Path
    log_path: Path
    network: bool = True
    pid: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def is_python(self) -> bool:
        """Whether the kernel's language is python (so it can be moved by os.chdir)."""
        return is_python(self.spec)

    async def exit_code(self) -> int | None:
        """The process's exit code (negative: killed by that signal), or None while it runs."""
        provisioner = self.manager.provisioner
        if provisioner is None or not provisioner.has_process:
            return None
        return await provisioner.poll()


class KernelLauncher:
    """Starts and stops kernel processes for a pool.

    Args:
        parent: the configurable whose config and log the kernel managers use.
        runtime: the pool's runtime folder (one 0700 folder per identity inside).
        context: the zmq context shared by every manager and client.
        specs: where kernelspecs are looked up.
        limits: resource limits of every kernel.
        startup_timeout: seconds a kernel has to become ready.
    """

    def __init__(
        self,
        parent: LoggingConfigurable,
        runtime: Path,
        context: zmq.asyncio.Context,
        specs: KernelSpecManager,
        limits: launch.ResourceLimits,
        startup_timeout: float,
    ) -> None:
        self.parent = parent
        self.runtime = runtime
        self.context = context
        self.specs = specs
        self.limits = limits
        self.startup_timeout = startup_timeout
        self.log: logging.Logger | logging.LoggerAdapter[Any] = parent.log

    async def start(
        self,
        identity: KernelIdentity,
        kernel_name: str,
        spec: KernelSpec,
        cwd: Path,
        network: bool,
    ) -> KernelProcess:
        """Start a kernel as ``identity`` in ``cwd`` and wait until it is ready.

        Without ``network`` it runs in a network namespace of its own with
        loopback only (:mod:`kernels.sandbox`), and so do its restarts.

        Raises:
            KernelStartFailed: it could not be launched, exited, or timed out;
                nothing of it is left running.
        """
        folder = user_runtime_dir(self.runtime, identity)
        kernel_id = str(uuid.uuid4())
        manager = _KernelManager(
            parent=self.parent,
            log=self.log,
            kernel_name=kernel_name,
            kernel_spec_manager=self.specs,
            context=self.context,
            transport="ipc",
            ip=str(folder / f"kernel-{kernel_id}"),
            connection_file=str(folder / f"kernel-{kernel_id}.json"),
            kernel_id=kernel_id,
        )
        manager.limits = self.limits
        manager.switch_user = identity.switch
        manager.sandboxed_as = None if network else identity
        manager.write_connection_file()
        secure_connection_file(Path(manager.connection_file), identity)
        process = KernelProcess(
            manager=manager,
            client=manager.client(context=self.context),
            identity=identity,
            spec=spec,
            kernel_name=kernel_name,
            cwd=cwd,
            log_path=folder / f"kernel-{kernel_id}.log",
            network=network,
        )
        try:
            await self._launch(process)
        except BaseException:
            await asyncio.shield(self.stop(process, now=True))
            raise
        return process

    async def relaunch(self, process: KernelProcess, now: bool) -> None:
        """Replace the process (politely stopped, or killed if ``now``) with a new one.

        Same kernel id and connection file; new pid and a new client (the
        old client is stopped first). Raises KernelStartFailed.
        """
        process.client.stop_channels()
        await process.manager.shutdown_kernel(now=now, restart=True)
        _kill_group(process.pid)
        await self._launch(process)

    async def move(self, process: KernelProcess, cwd: Path) -> None:
        """Move a python kernel to ``cwd`` by a silent ``os.chdir``; stop it if that fails.

        Raises:
            KernelStartFailed: the kernel's user cannot enter ``cwd``.
        """
        code = f"import os as _cs_os; _cs_os.chdir({str(cwd)!r}); del _cs_os"
        try:
            async with asyncio.timeout(self.startup_timeout):
                reply = await _run_silently(process.client, code)
        except BaseException:
            await asyncio.shield(self.stop(process, now=True))
            raise
        if reply["status"] != "ok":
            await self.stop(process, now=True)
            reason = f"cannot enter {cwd}: {reply.get('ename')}: {reply.get('evalue')}"
            raise KernelStartFailed(process.kernel_name, reason)
        process.cwd = cwd
        process.manager.launch_cwd = str(cwd)

    async def stop(self, process: KernelProcess, now: bool = False) -> None:
        """Stop the process (asked politely unless ``now``), kill what is left in its
        process group, remove its files. Errors are logged, never raised."""
        process.client.stop_channels()
        try:
            if process.manager.has_kernel:
                await process.manager.shutdown_kernel(now=now)
            else:
                await process.manager.cleanup_resources()
        except Exception:
            self.log.exception("error while shutting down kernel %s", process.manager.kernel_id)
        finally:
            _kill_group(process.pid)
            with contextlib.suppress(FileNotFoundError):
                process.log_path.unlink()

    async def _launch(self, process: KernelProcess) -> None:
        """Launch the kernel of ``process`` (first start or relaunch); wait until it is ready."""
        manager, identity = process.manager, process.identity
        manager.launch_cwd = str(process.cwd)
        options: dict[str, Any] = {"env": kernel_env(identity, process.log_path.parent)}
        if manager.sandboxed_as is None:
            options.update(popen_kwargs(identity))  # else the sandbox switches, once inside
        if not identity.switch:
            options["cwd"] = str(process.cwd)
        name = process.kernel_name
        try:
            async with asyncio.timeout(self.startup_timeout):
                with open(process.log_path, "ab") as output:  # noqa: ASYNC230 (local, instant)
                    if identity.switch:
                        os.chown(process.log_path, identity.uid, identity.gid)
                    await manager.start_kernel(stdout=output, stderr=output, **options)
                process.pid = int(getattr(manager.provisioner, "pid", 0) or 0)
                process.client = manager.client(context=self.context)
                process.client.start_channels(hb=False)
                await self._wait_ready(process)
        except TimeoutError:
            reason = f"not ready within {self.startup_timeout:g} s{_tail(process.log_path)}"
            raise KernelStartFailed(name, reason) from None
        except OSError as error:
            reason = f"cannot launch it as {describe(identity)}: {error}"
            if isinstance(error, PermissionError):
                reason += " (every folder above the kernel's program must be searchable by them)"
            raise KernelStartFailed(name, reason) from error

    async def _wait_ready(self, process: KernelProcess) -> None:
        """Until the kernel answers kernel_info on shell and its status reaches iopub."""
        client = process.client
        while True:
            code = await process.exit_code()
            if code is not None:
                reason = f"exited with code {code}{_tail(process.log_path)}"
                raise KernelStartFailed(process.kernel_name, reason)
            msg_id = client.kernel_info()
            with contextlib.suppress(queue.Empty):
                await _reply_to(client, msg_id, timeout=1.0)
                # The idle status is missed while iopub is still subscribing (a
                # "slow joiner"): ask again soon rather than waiting long for it.
                if await _idle_on_iopub(client, msg_id, timeout=0.2):
                    return


def is_python(spec: KernelSpec) -> bool:
    """Whether a kernelspec's language is python."""
    return (spec.language or "").lower().startswith("python")


def _kill_group(pgid: int) -> None:
    """SIGKILL what is left of a kernel's process group (the kernel leads its own session)."""
    if pgid > 0:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def _tail(path: Path, size: int = 2000) -> str:
    """The end of a kernel's output, to explain why it failed."""
    try:
        with open(path, "rb") as output:
            output.seek(max(0, output.seek(0, os.SEEK_END) - size))
            text = output.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return f"; its output ends with:\n{text}" if text else ""


async def _reply_to(
    client: AsyncKernelClient, msg_id: str, timeout: float | None
) -> dict[str, Any]:
    """The shell reply to ``msg_id``; raises queue.Empty when none came within ``timeout``."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        msg: dict[str, Any] = await client.get_shell_msg(timeout=remaining)
        if msg.get("parent_header", {}).get("msg_id") == msg_id:
            return msg


async def _idle_on_iopub(client: AsyncKernelClient, msg_id: str, timeout: float) -> bool:
    """Whether iopub reports the request ``msg_id`` finished (status idle) within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            msg: dict[str, Any] = await client.get_iopub_msg(timeout=remaining)
        except queue.Empty:
            return False
        if (
            msg["msg_type"] == "status"
            and msg.get("parent_header", {}).get("msg_id") == msg_id
            and msg["content"].get("execution_state") == "idle"
        ):
            return True


async def _run_silently(client: AsyncKernelClient, code: str) -> dict[str, Any]:
    """Execute ``code`` silently; return the reply's content once iopub says it is done."""
    msg_id = client.execute(code, silent=True, store_history=False, allow_stdin=False)
    reply = await _reply_to(client, msg_id, timeout=None)
    await _idle_on_iopub(client, msg_id, timeout=5.0)
    content: dict[str, Any] = reply["content"]
    return content


__all__ = ["KernelLauncher", "KernelProcess", "is_python"]
