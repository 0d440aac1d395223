"""The kernel pool: one kernel per notebook, pre-started spares, quotas, culling, death watch.

Use it as ``async with KernelPool(config=...) as pool``; everything it
started is shut down on exit (kernel processes and their process groups,
spares, background tasks, the runtime folder it created).

The contract with the execution engine and the web layer:

* :meth:`KernelPool.kernel_for` gives a notebook its kernel, starting one
  or taking a pre-started spare; concurrent calls for one notebook share one
  start. :meth:`get`, :meth:`shutdown`, :meth:`restart`, :meth:`interrupt`.
* :class:`ManagedKernel` holds a started :class:`AsyncKernelClient`
  (shell, iopub, stdin and control channels running; no heartbeat thread:
  the pool watches the process instead). :meth:`restart` gives the kernel a
  new process *and a new client* (the old one is stopped, so requests sent
  to the dead kernel are never delivered to the new one): read
  ``kernel.client`` again after a restart.
* The engine calls :meth:`ManagedKernel.touch` on activity and
  :meth:`ManagedKernel.set_busy` around executions; a busy kernel is never
  culled.
* Hooks, all ``async def``, registered with :meth:`on_kernel_died` and
  :meth:`on_kernel_culled`; each call runs in its own pool-owned task.

Kernels talk over the ipc transport; their connection files and sockets
live in a per-identity 0700 folder (see :mod:`kernels.identity`), so a
kernel in a network namespace of its own (no network: :mod:`kernels.sandbox`)
still talks to the server. Who gets the network: :meth:`KernelPool.has_network`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

import zmq.asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.kernelspec import NoSuchKernel as _JupyterNoSuchKernel
from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Float, Int, List, Set, Unicode
from traitlets.config import LoggingConfigurable

from .errors import (
    KernelDied,
    KernelLimitReached,
    KernelPoolClosed,
    NoSuchKernel,
    NoSuchKernelSpec,
)
from .identity import (
    KernelIdentity,
    KernelOwner,
    describe,
    make_runtime_root,
    prepare_home,
    resolve_identity,
    unix_group_names,
)
from .launch import ResourceLimits
from .process import KernelLauncher, KernelProcess, is_python
from .spares import SPARE_RETRY_AFTER, SpareKernels, SpareKey

KernelStatus = Literal["alive", "restarting", "dead", "stopped"]
KernelDiedCallback = Callable[[str, "ManagedKernel"], Awaitable[None]]
"""``async def on_kernel_died(notebook_id, kernel)``."""
KernelCulledCallback = Callable[[str], Awaitable[None]]
"""``async def on_kernel_culled(notebook_id)``."""
Unregister = Callable[[], None]
"""Returned by the ``on_...`` hook registrations: call it to unregister the callback."""
_Callback = TypeVar("_Callback", KernelDiedCallback, KernelCulledCallback)



class ManagedKernel:
    """A notebook's kernel, shared by everyone in the notebook's room.

    ``client`` is replaced by :meth:`KernelPool.restart`; ``pid`` changes with
    it. ``last_activity`` is a ``time.monotonic()`` value. ``status`` is
    "alive", "restarting", "dead" (the process exited and nobody restarted
    it yet; ``exit_code`` says how) or "stopped" (shut down or culled).
    """

    def __init__(
        self, notebook_id: str, owner: KernelOwner, process: KernelProcess, from_spare: bool
    ) -> None:
        self.notebook_id = notebook_id
        self.owner = owner
        self.from_spare = from_spare
        self.status: KernelStatus = "alive"
        self.exit_code: int | None = None
        self.last_activity = time.monotonic()
        self.busy = False
        self._process = process

    @property
    def id(self) -> str:
        """The kernel id (kept across restarts)."""
        return str(self._process.manager.kernel_id)

    @property
    def kernel_name(self) -> str:
        return self._process.kernel_name

    @property
    def identity(self) -> KernelIdentity:
        """The unix account the kernel process runs as."""
        return self._process.identity

    @property
    def cwd(self) -> Path:
        return self._process.cwd

    @property
    def network(self) -> bool:
        """Whether the kernel has the host's network (else only its own loopback)."""
        return self._process.network

    @property
    def manager(self) -> AsyncKernelManager:
        return self._process.manager

    @property
    def client(self) -> AsyncKernelClient:
        """The started client of the current process (a new one after each restart)."""
        return self._process.client

    @property
    def pid(self) -> int:
        return self._process.pid

    def touch(self) -> None:
        """Record activity now; culling counts idle time from the last touch."""
        self.last_activity = time.monotonic()

    def set_busy(self, busy: bool) -> None:
        """Mark the kernel as executing (never culled while busy); also touches it."""
        self.busy = busy
        self.touch()

    async def is_alive(self) -> bool:
        """Whether the kernel process is running."""
        return self.status in ("alive", "restarting") and await self.manager.is_alive()

    def __repr__(self) -> str:
        return (
            f"<ManagedKernel {self.id} {self.kernel_name} notebook={self.notebook_id!r} "
            f"pid={self.pid} {self.status}>"
        )



@dataclass(frozen=True, slots=True)
class KernelSpecInfo:
    """What a person choosing a kernel sees of a kernelspec."""

    name: str
    display_name: str
    language: str

class KernelPool(LoggingConfigurable):
    """Kernels for notebooks: pre-started spares, quotas, idle culling and death detection."""

    pool_size = Int(
        1,
        min=0,
        config=True,
        help="Spare kernels kept pre-started for each kernelspec in spare_kernel_names, "
        "running as the default identity (the service account as root, else the server's user).",
    )
    spare_kernel_names = List(
        Unicode(),
        default_value=["python3"],
        config=True,
        help="Kernelspecs to keep spares of. Only python kernels are kept as spares: "
        "a spare is moved to the notebook's folder by a silent os.chdir.",
    )
    max_spares = Int(
        10,
        min=0,
        config=True,
        help="Most spare kernels at once, over every identity (prewarm() stops there).",
    )
    max_kernels = Int(
        50,
        min=0,
        config=True,
        help="Most kernel processes at once, spares included (spares are stopped to make "
        "room for a notebook's kernel). 0 means no limit.",
    )
    max_kernels_per_user = Int(
        5,
        min=0,
        config=True,
        help="Most notebook kernels whose notebook one owner owns. 0 means no limit.",
    )
    cull_idle_after = Float(
        3600.0,
        min=0.0,
        config=True,
        help="Seconds without execution after which a notebook's kernel is shut down "
        "(and prewarmed spares of users are stopped). 0 means never.",
    )
    check_interval = Float(
        0.5,
        min=0.01,
        config=True,
        help="Seconds between checks for dead kernels, idle kernels and missing spares.",
    )
    startup_timeout = Float(
        60.0,
        min=0.1,
        config=True,
        help="Seconds a kernel has to start and answer kernel_info before it is killed.",
    )
    kernel_user = Unicode(
        "nobody",
        config=True,
        help="Unprivileged account that runs kernels when the server runs as root and the "
        "notebook's owner has no unix account. Never root.",
    )
    runtime_dir = Unicode(
        "",
        config=True,
        help="Folder for connection files and ipc sockets (one 0700 folder per kernel "
        "user inside). Empty: a fresh private folder in the temp folder, removed on exit. "
        "Keep the path short: unix socket paths are limited to about 100 bytes.",
    )
    limit_address_space = Int(
        0, min=0, config=True, help="RLIMIT_AS of each kernel, in bytes. 0 means unlimited."
    )
    limit_cpu_seconds = Int(
        0, min=0, config=True, help="RLIMIT_CPU of each kernel, in CPU seconds. 0: unlimited."
    )
    limit_processes = Int(
        0,
        min=0,
        config=True,
        help="RLIMIT_NPROC of each kernel. Linux counts it per user over all their processes "
        "and threads (a kernel has about ten threads). 0 means unlimited.",
    )
    limit_open_files = Int(
        0, min=0, config=True, help="RLIMIT_NOFILE of each kernel. 0 means unlimited."
    )
    limit_file_size = Int(
        0,
        min=0,
        config=True,
        help="RLIMIT_FSIZE of each kernel: the largest file it may write, in bytes (a "
        "write beyond it fails). Kernels of other users get a private TMPDIR; the disk "
        "they share is bounded only by this and by file system quotas. 0 means unlimited.",
    )

    sandbox_kernels = Bool(
        True,
        config=True,
        help="Run kernels without network (a network namespace of their own, loopback "
        "only) unless network_groups or their kernelspec allow it. False gives every kernel "
        "the host's network: unsafe on a public server (its users can reach anything the "
        "host can, e.g. to send spam or probe the internal network).",
    )
    network_groups = Set(
        Unicode(),
        config=True,
        help="Groups whose members' kernels have the host's network: unix groups of PAM "
        "users' accounts, or the server's groups (collab-server group ...). A notebook's "
        "kernel has the network when the notebook's owner is in one. Empty: nobody.",
    )
    extra_kernel_dirs = List(
        Unicode(),
        config=True,
        help="Folders of kernelspecs (each holding NAME/kernel.json) searched before "
        "Jupyter's own. The server puts data_dir/kernels (collab-server kernels add) first.",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._kernels: dict[str, ManagedKernel] = {}
        self._starting: dict[str, tuple[asyncio.Task[ManagedKernel], KernelOwner]] = {}
        self._restarts: dict[str, asyncio.Task[None]] = {}
        self._spares = SpareKernels(self._launch_spare, self._stop_later, self.log)
        self._tasks: set[asyncio.Task[Any]] = set()  # hook calls: cancelled on stop
        self._stops: set[asyncio.Task[Any]] = set()  # process stops: awaited on stop
        self._died_callbacks: list[KernelDiedCallback] = []
        self._culled_callbacks: list[KernelCulledCallback] = []
        self._watcher: asyncio.Task[None] | None = None
        self._context: zmq.asyncio.Context | None = None
        self._specs = KernelSpecManager(parent=self)
        self._launcher: KernelLauncher | None = None
        self._runtime: Path | None = None
        self._own_runtime = False
        self._open = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Create the runtime folder, start the watcher and the default spares."""
        if self.runtime_dir:
            self._runtime = make_runtime_root(Path(self.runtime_dir))
        else:
            self._runtime = make_runtime_root(Path(tempfile.mkdtemp(prefix="collab-kernels-")))
            self._own_runtime = True
        dirs = [d for d in self.extra_kernel_dirs if d not in self._specs.kernel_dirs]
        self._specs.kernel_dirs = [*dirs, *self._specs.kernel_dirs]
        self._context = zmq.asyncio.Context()
        self._launcher = KernelLauncher(
            parent=self,
            runtime=self._runtime,
            context=self._context,
            specs=self._specs,
            limits=ResourceLimits(
                address_space=self.limit_address_space,
                cpu_seconds=self.limit_cpu_seconds,
                processes=self.limit_processes,
                open_files=self.limit_open_files,
                file_size=self.limit_file_size,
            ),
            startup_timeout=self.startup_timeout,
        )
        self._open = True
        self._spares.accepting = True
        self._watcher = asyncio.create_task(self._watch(), name="kernel-pool-watcher")
        self._replenish()

    async def stop(self) -> None:
        """Shut down every kernel and spare, stop background work; idempotent."""
        if not self._open and self._context is None:
            return
        self._open = False
        self._spares.accepting = False
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        pending: list[asyncio.Task[Any]] = [
            *self._spares.cancel_starting(),
            *(t for t, _ in self._starting.values()),
            *self._restarts.values(),
        ]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        processes = [k._process for k in self._kernels.values()]
        processes += self._spares.take_all()
        for kernel in self._kernels.values():
            kernel.status = "stopped"
        self._kernels.clear()
        await asyncio.gather(
            *(self._stop_process(p) for p in processes),
            *self._stops,
            return_exceptions=True,
        )
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._launcher = None
        if self._context is not None:
            self._context.destroy(linger=0)
            self._context = None
        if self._own_runtime and self._runtime is not None:
            shutil.rmtree(self._runtime, ignore_errors=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ hooks

    def on_kernel_died(self, callback: KernelDiedCallback) -> Unregister:
        """Register ``await callback(notebook_id, kernel)``, called when a kernel process dies.

        Called once per death, within about ``check_interval`` of it; the
        kernel's status is then "dead" until someone calls :meth:`restart`.
        Each call runs as a pool task; an exception it raises is logged.
        Returns the function that unregisters it.
        """
        return _register(self._died_callbacks, callback)

    def on_kernel_culled(self, callback: KernelCulledCallback) -> Unregister:
        """Register ``await callback(notebook_id)``, called after an idle kernel was shut down.

        As :meth:`on_kernel_died`: run as a pool task, errors logged; returns
        the function that unregisters it.
        """
        return _register(self._culled_callbacks, callback)

    # ------------------------------------------------------------------ the API

    def has_network(self, owner: KernelOwner, identity: KernelIdentity, spec: KernelSpec) -> bool:
        """Whether ``owner``'s kernels of ``spec``, running as ``identity``, get the network.

        Yes when ``sandbox_kernels`` is off; when the kernelspec's metadata says
        ``{"collab_server": {"network": true}}`` (for everyone who uses it);
        when the owner is in one of ``network_groups``: a server group, or a
        unix group of their own account (a PAM owner whose kernel runs as them).
        """
        if not self.sandbox_kernels:
            return True
        settings = (spec.metadata or {}).get("collab_server")
        if isinstance(settings, dict) and settings.get("network") is True:
            return True
        allowed = set(self.network_groups)
        if not allowed:
            return False
        if owner.groups & allowed:
            return True
        own_account = owner.unix and identity.user == owner.name
        return own_account and bool(unix_group_names(identity) & allowed)

    def get(self, notebook_id: str) -> ManagedKernel | None:
        """The notebook's kernel, if it has one (in any status but stopped)."""
        return self._kernels.get(notebook_id)

    async def kernel_for(
        self, notebook_id: str, kernel_name: str, owner: KernelOwner, cwd: Path
    ) -> ManagedKernel:
        """The notebook's kernel, started (or taken from the spares) if it has none.

        A spare of the same kernelspec and identity is taken when there is
        one (or is being started), and moved to ``cwd``; otherwise a kernel is
        started in ``cwd``. Concurrent calls for one notebook share one start.
        A notebook that has a kernel gets it back whatever ``kernel_name`` says
        (shut it down first to change the kernelspec), dead ones included.

        Raises:
            NoSuchKernelSpec: ``kernel_name`` is not installed.
            KernelLimitReached: ``max_kernels`` (scope "total") or the owner's
                ``max_kernels_per_user`` (scope "user") is reached.
            KernelStartFailed: the kernel crashed, could not be launched, or
                was not ready within ``startup_timeout``.
            KernelIdentityError: it would run as root, or the service account is missing.
            KernelPoolClosed: the pool is not running.
        """
        self._check_open()
        kernel = self._kernels.get(notebook_id)
        if kernel is not None:
            return kernel
        starting = self._starting.get(notebook_id)
        if starting is None:
            identity = resolve_identity(owner, self.kernel_user)
            spec = self._spec(kernel_name)
            self._check_user_limit(owner)
            network = self.has_network(owner, identity, spec)
            source = self._spares.claim((identity, kernel_name, network))
            if isinstance(source, KernelProcess) and not _same_program(source.spec, spec):
                # Its kernelspec changed since (collab-server kernels add): not that one.
                self._stop_later(source, "kernel-stop-stale-spare")
                source = None
            if source is None:
                self._make_room()
            task = asyncio.create_task(
                self._open_kernel(
                    notebook_id, owner, identity, kernel_name, spec, cwd, network, source
                ),
                name=f"kernel-start-{notebook_id}",
            )
            task.add_done_callback(_retrieve)
            starting = (task, owner)
            self._starting[notebook_id] = starting
            self._replenish()
        try:
            return await asyncio.shield(starting[0])
        except asyncio.CancelledError:
            if starting[0].cancelled() and not self._open:
                raise KernelPoolClosed("the kernel pool stopped while the kernel started") from None
            raise

    async def shutdown(self, notebook_id: str) -> None:
        """Shut the notebook's kernel down (politely, then by force) and forget it.

        A start or restart in progress is awaited first.

        Raises:
            NoSuchKernel: the notebook has no kernel.
        """
        await self._settle(notebook_id)
        kernel = self._kernels.pop(notebook_id, None)
        if kernel is None:
            raise NoSuchKernel(notebook_id)
        now = kernel.status == "dead"
        kernel.status = "stopped"
        await self._stop_process(kernel._process, now=now)

    async def restart(self, notebook_id: str) -> ManagedKernel:
        """Give the notebook's kernel a new process (same kernel id, new pid, new client).

        A live kernel is asked to shut down first; a dead one is cleaned up.
        Concurrent calls share one restart.

        Raises:
            NoSuchKernel: the notebook has no kernel.
            KernelStartFailed: the new process did not become ready; the
                kernel's status is then "dead" and restart may be tried again.
        """
        self._check_open()
        starting = self._starting.get(notebook_id)
        if starting is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(starting[0])
        kernel = self._kernels.get(notebook_id)
        if kernel is None:
            raise NoSuchKernel(notebook_id)
        task = self._restarts.get(notebook_id)
        if task is None:
            task = asyncio.create_task(self._restart(kernel), name=f"kernel-restart-{notebook_id}")
            task.add_done_callback(_retrieve)
            self._restarts[notebook_id] = task
            task.add_done_callback(lambda _: self._restarts.pop(notebook_id, None))
        await asyncio.shield(task)
        return kernel

    async def interrupt(self, notebook_id: str) -> None:
        """Interrupt what the notebook's kernel is running (SIGINT to its process group).

        Raises:
            NoSuchKernel: the notebook has no kernel.
            KernelDied: the kernel process is not running.
        """
        kernel = self._kernels.get(notebook_id)
        if kernel is None:
            raise NoSuchKernel(notebook_id)
        if not await kernel.is_alive():
            raise KernelDied(notebook_id, kernel.exit_code)
        await kernel.manager.interrupt_kernel()

    def prewarm(self, owner: KernelOwner, kernel_name: str = "python3") -> None:
        """Start a spare kernel for ``owner``'s identity in the background.

        Called when a user logs in, so that their first notebook opens at
        once. Bounded: at most one spare per identity and kernelspec, at most
        ``max_spares`` in all, never past ``max_kernels``; unused prewarmed
        spares are stopped after ``cull_idle_after``. Does nothing for
        kernelspecs that are not python. Never raises: problems are logged.
        """
        if not self._open:
            return
        try:
            identity = resolve_identity(owner, self.kernel_user)
            spec = self._spec(kernel_name)
        except Exception:
            self.log.exception("cannot prewarm a %s kernel for %s", kernel_name, owner.name)
            return
        key = (identity, kernel_name, self.has_network(owner, identity, spec))
        if not is_python(spec) or self._spares.count(key) > 0 or not self._room_for_spare():
            return
        self._spares.start(key, prewarmed=True)

    def spare_count(self, kernel_name: str | None = None) -> int:
        """Ready spares (of ``kernel_name``, or of every kernelspec)."""
        return self._spares.ready_count(kernel_name)

    async def wait_for_spares(self) -> None:
        """Wait until every spare being started is ready (or failed)."""
        await self._spares.wait()

    def kernel_specs(self) -> list[KernelSpecInfo]:
        """The kernelspecs a notebook may choose, as this pool finds them (reads the disk)."""
        found = []
        for name in sorted(self._specs.find_kernel_specs()):
            try:
                spec = self._specs.get_kernel_spec(name)
            except Exception:  # a broken kernel.json: not offered, and said why
                self.log.warning("kernelspec %r cannot be read", name, exc_info=True)
                continue
            found.append(KernelSpecInfo(name, spec.display_name or name, spec.language or ""))
        return found

    def prepare_home(self, folder: Path, owner: KernelOwner) -> None:
        """Create ``owner``'s notebook folder for their kernels; see :func:`identity.prepare_home`."""
        prepare_home(folder, owner, self.kernel_user)

    # ------------------------------------------------------------------ starting

    def _check_open(self) -> None:
        if not self._open:
            raise KernelPoolClosed("the kernel pool is not running")

    def _spec(self, kernel_name: str) -> KernelSpec:
        try:
            return self._specs.get_kernel_spec(kernel_name)
        except _JupyterNoSuchKernel:
            raise NoSuchKernelSpec(kernel_name) from None

    def _total(self) -> int:
        return len(self._kernels) + len(self._starting) + self._spares.total

    def _check_user_limit(self, owner: KernelOwner) -> None:
        if not self.max_kernels_per_user:
            return
        count = sum(1 for k in self._kernels.values() if k.owner.name == owner.name)
        count += sum(1 for _, o in self._starting.values() if o.name == owner.name)
        if count >= self.max_kernels_per_user:
            raise KernelLimitReached("user", self.max_kernels_per_user, owner.name)

    def _make_room(self) -> None:
        """Stop a spare if the pool is at ``max_kernels``; raise if there is none to stop."""
        if not self.max_kernels or self._total() < self.max_kernels:
            return
        if not self._spares.evict_one():
            raise KernelLimitReached("total", self.max_kernels)

    async def _open_kernel(
        self,
        notebook_id: str,
        owner: KernelOwner,
        identity: KernelIdentity,
        kernel_name: str,
        spec: KernelSpec,
        cwd: Path,
        network: bool,
        source: KernelProcess | asyncio.Task[KernelProcess] | None,
    ) -> ManagedKernel:
        try:
            launcher = self._running_launcher()
            if source is None:
                process = await launcher.start(identity, kernel_name, spec, cwd, network)
            else:
                process = source if isinstance(source, KernelProcess) else await source
                await launcher.move(process, cwd)
            kernel = ManagedKernel(notebook_id, owner, process, from_spare=source is not None)
            self._kernels[notebook_id] = kernel
            self.log.info(
                "kernel %s (%s) for notebook %s runs as %s, pid %d, %s%s",
                kernel.id,
                kernel_name,
                notebook_id,
                describe(identity),
                process.pid,
                "with network" if network else "without network",
                ", from a spare" if source is not None else "",
            )
            return kernel
        finally:
            self._starting.pop(notebook_id, None)

    def _running_launcher(self) -> KernelLauncher:
        if self._launcher is None:
            raise KernelPoolClosed("the kernel pool is not running")
        return self._launcher

    def _replenish(self) -> None:
        """Start default spares until each kernelspec in spare_kernel_names has pool_size."""
        if not self._open or not self.pool_size:
            return
        owner = KernelOwner("", unix=False)
        try:
            identity = resolve_identity(owner, self.kernel_user)
        except Exception:
            self.log.exception("cannot keep spare kernels")
            return
        for kernel_name in self.spare_kernel_names:
            try:
                spec = self._spec(kernel_name)
            except NoSuchKernelSpec:
                self.log.error("cannot keep spares of %r: no such kernelspec", kernel_name)
                continue
            if not is_python(spec):
                continue
            key = (identity, kernel_name, self.has_network(owner, identity, spec))
            if self._spares.failed_recently(key):
                continue
            while self._spares.count(key) < self.pool_size and self._room_for_spare():
                self._spares.start(key, prewarmed=False)

    def _room_for_spare(self) -> bool:
        if self._spares.total >= self.max_spares:
            return False
        return not self.max_kernels or self._total() < self.max_kernels

    def _launch_spare(self, key: SpareKey) -> Coroutine[Any, Any, KernelProcess]:
        identity, kernel_name, network = key
        spec = self._spec(kernel_name)
        cwd = Path(identity.home) if os.path.isdir(identity.home) else Path("/")
        return self._running_launcher().start(identity, kernel_name, spec, cwd, network)

    # ------------------------------------------------------------------ restart, stop

    async def _settle(self, notebook_id: str) -> None:
        """Wait for a start or restart of the notebook's kernel to end, whatever the outcome."""
        starting = self._starting.get(notebook_id)
        for task in (starting[0] if starting else None, self._restarts.get(notebook_id)):
            if task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(task)

    async def _restart(self, kernel: ManagedKernel) -> None:
        now = kernel.status == "dead"
        kernel.status = "restarting"
        try:
            await self._running_launcher().relaunch(kernel._process, now=now)
        except BaseException:
            kernel.status = "dead"
            raise
        kernel.status = "alive"
        kernel.exit_code = None
        kernel.touch()
        self.log.info(
            "kernel %s of notebook %s restarted, pid %d", kernel.id, kernel.notebook_id, kernel.pid
        )

    def _stop_later(self, process: KernelProcess, name: str) -> None:
        self._spawn(self._stop_process(process, now=True), name, stop=True)

    async def _stop_process(self, process: KernelProcess, now: bool = False) -> None:
        if self._launcher is not None:
            await self._launcher.stop(process, now=now)

    # ------------------------------------------------------------------ the watcher

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                await self._check()
            except Exception:
                self.log.exception("kernel pool check failed")

    async def _check(self) -> None:
        """Report dead kernels, cull idle ones, drop dead spares, start missing spares."""
        now = time.monotonic()
        for notebook_id, kernel in list(self._kernels.items()):
            if kernel.status == "alive":
                code = await kernel._process.exit_code()
                if code is not None and kernel.status == "alive":
                    kernel.status = "dead"
                    kernel.exit_code = code
                    self.log.warning("kernel %r died with exit code %d", kernel, code)
                    for died in self._died_callbacks:
                        self._spawn(_await(died(notebook_id, kernel)), "kernel-died-callback")
            idle = now - kernel.last_activity
            if (
                self.cull_idle_after
                and idle > self.cull_idle_after
                and not kernel.busy
                and kernel.status in ("alive", "dead")
                and notebook_id not in self._restarts
                and self._kernels.get(notebook_id) is kernel
            ):
                del self._kernels[notebook_id]
                now_ = kernel.status == "dead"
                kernel.status = "stopped"
                self.log.info("culling kernel %r after %.0f s idle", kernel, idle)
                self._spawn(self._cull(notebook_id, kernel, now_), "kernel-cull", stop=True)
        await self._spares.drop_unusable(now, self.cull_idle_after)
        self._replenish()

    async def _cull(self, notebook_id: str, kernel: ManagedKernel, now: bool) -> None:
        """Stop a culled kernel (already forgotten), then tell the hooks."""
        await self._stop_process(kernel._process, now=now)
        for culled in self._culled_callbacks:
            self._spawn(_await(culled(notebook_id)), "kernel-culled-callback")

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str, stop: bool = False) -> None:
        """Run ``coro`` as a pool-owned task; ``stop``: it stops a process (awaited on exit)."""
        task = asyncio.create_task(coro, name=name)
        owner = self._stops if stop else self._tasks
        owner.add(task)

        def done(task: asyncio.Task[Any]) -> None:
            owner.discard(task)
            if not task.cancelled() and task.exception() is not None:
                self.log.error("%s failed", name, exc_info=task.exception())

        task.add_done_callback(done)


# ---------------------------------------------------------------------- helpers


def _register(callbacks: list[_Callback], callback: _Callback) -> Unregister:
    callbacks.append(callback)

    def unregister() -> None:
        if callback in callbacks:
            callbacks.remove(callback)

    return unregister


async def _await(awaitable: Awaitable[None]) -> None:
    await awaitable


def _same_program(old: KernelSpec, new: KernelSpec) -> bool:
    """Whether a kernel started from kernelspec ``old`` runs what ``new`` says to run."""
    return bool(old.argv == new.argv and old.env == new.env)


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a shared task's exception as retrieved (its awaiters, if any, re-raise it)."""
    if not task.cancelled():
        task.exception()


__all__ = [
    "SPARE_RETRY_AFTER",
    "KernelCulledCallback",
    "KernelDiedCallback",
    "KernelOwner",
    "KernelPool",
    "KernelSpecInfo",
    "KernelStatus",
    "ManagedKernel",
    "Unregister",
]
