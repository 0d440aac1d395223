"""The long-lived parts of a running server, built from its settings."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from sqlalchemy import Engine

from auth import schema
from auth.authenticator import Authenticator
from auth.identity import Credentials, User
from auth.sessions import SessionIdentityProvider, Sessions
from auth.sharing import Sharing
from auth.tokens import TokenIdentityProvider, Tokens
from auth.users import Users
from crdt import contents as contents_module
from crdt.contents import ContentsManager
from crdt.notebook_io import NotebookWorker
from crdt.room import RoomSettings
from crdt.rooms import RoomManager
from crdt.store import UpdateStore
from kernels.history import ExecutionHistory
from kernels.log import ExecutionLog
from kernels.pool import KernelPool
from kernels.running import NotebookKernels

from .access import Authorizer
from .classroom import Classroom
from .database import is_sqlite, open_engine
from .health import DatabaseHealth
from .live import LiveSockets
from .notebooks import Notebooks


@dataclass
class Settings:
    """Everything the services need; the CLI fills it from traitlets config."""

    root_dir: Path
    data_dir: Path
    db_url: str = ""
    store_url: str = ""
    sqlite_synchronous: str = "NORMAL"
    room_idle_timeout: float = 60.0
    disk_poll_interval: float = 1.0
    live_poll_interval: float = 2.0
    worker_processes: int = 1
    room: RoomSettings = field(default_factory=RoomSettings)
    authenticators: list[Authenticator[Any]] = field(default_factory=list)
    tutor_groups: dict[str, list[str]] = field(default_factory=dict)
    session_lifetime: float = 14 * 24 * 3600
    cookie_secret: bytes = b""  # default: data_dir/cookie_secret, created on first start
    max_kept_output_bytes: int = 1024 * 1024  # per run, in the execution log
    executions_url: str = ""
    kernel_pool: KernelPool | None = None  # configured by the CLI; default KernelPool()
    trash_days: float = 30.0
    max_upload_bytes: int = 64 * 1024 * 1024
    max_output_bytes: int = 1024 * 1024
    authenticate_metrics: bool = True  # False: /metrics answers anyone

    def kernel_dir(self) -> Path:
        """Kernelspecs registered by ``collab-server kernels add``, searched first by the pool."""
        return self.data_dir / "kernels"

    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'collab.db'}"

    def resolved_executions_url(self) -> str:
        if self.executions_url:
            return self.executions_url
        db_url = self.resolved_db_url()
        return f"sqlite:///{self.data_dir / 'executions.db'}" if is_sqlite(db_url) else db_url

    def resolved_store_url(self) -> str:
        if self.store_url:
            return self.store_url
        db_url = self.resolved_db_url()
        return f"sqlite:///{self.data_dir / 'updates.db'}" if is_sqlite(db_url) else db_url


class Identity:
    """Who a request is: by its token if it presents one (never falling back to the
    cookie, so a bad token is never rescued by ambient credentials), else by its
    login session."""

    def __init__(self, tokens: TokenIdentityProvider, sessions: SessionIdentityProvider) -> None:
        self.tokens = tokens
        self.sessions = sessions

    async def identify(self, credentials: Credentials) -> User | None:
        if credentials.presents_token:
            return await self.tokens.identify(credentials)
        return await self.sessions.identify(credentials)


def load_cookie_secret(data_dir: Path) -> bytes:
    """The secret signing cookies, kept in ``data_dir/cookie_secret`` (mode 0600)."""
    path = data_dir / "cookie_secret"
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        secret = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
    if len(secret) < 32:
        raise ValueError(f"{path} holds a secret too short to sign cookies")
    return secret.encode()


class Services:
    """Databases, update store, notebook worker, contents and rooms.

    ``async with Services(settings) as services:`` starts them in dependency
    order and stops them in reverse, saving every open room.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Users reach their own folder under the root by name, never list it;
        # the server's own data (databases, cookie secret) is for the server only.
        settings.root_dir.mkdir(parents=True, exist_ok=True)
        settings.root_dir.chmod(0o711)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.data_dir.chmod(0o700)
        settings.room.checkpoint_dir = settings.data_dir / "checkpoints"
        self.db: Engine = open_engine(settings.resolved_db_url(), settings.sqlite_synchronous)
        self.store_db: Engine = open_engine(
            settings.resolved_store_url(), settings.sqlite_synchronous
        )
        self.executions_db: Engine = open_engine(
            settings.resolved_executions_url(), settings.sqlite_synchronous
        )
        self.health = DatabaseHealth(
            {"database": self.db, "store": self.store_db, "executions": self.executions_db}
        )
        self.cookie_secret = settings.cookie_secret or load_cookie_secret(settings.data_dir)
        self.users = Users(self.db)
        self.tokens = Tokens(self.db)
        self.sessions = Sessions(self.db, settings.session_lifetime)
        self.sharing = Sharing(self.db, settings.tutor_groups)
        self.authenticators = settings.authenticators
        self.identity = Identity(
            TokenIdentityProvider(self.tokens), SessionIdentityProvider(self.sessions)
        )
        self.contents = ContentsManager(settings.root_dir, self.db)
        self.kernel_pool = settings.kernel_pool or KernelPool()
        kernel_dir = str(settings.kernel_dir())
        if kernel_dir not in self.kernel_pool.extra_kernel_dirs:
            self.kernel_pool.extra_kernel_dirs = [kernel_dir, *self.kernel_pool.extra_kernel_dirs]
        self.authorizer = Authorizer(self.contents, self.sharing)
        self.live = LiveSockets(self.db, settings.live_poll_interval)
        self.store = UpdateStore(self.store_db)
        self.worker = NotebookWorker(settings.worker_processes)
        self.rooms = RoomManager(
            self.store,
            self.worker,
            self.contents.locate,
            settings.room,
            idle_timeout=settings.room_idle_timeout,
            poll_interval=settings.disk_poll_interval,
        )
        self.execution_log = ExecutionLog(
            self.executions_db, max_kept_output_bytes=settings.max_kept_output_bytes
        )
        self.history = ExecutionHistory(self.executions_db)
        self.kernels = NotebookKernels(
            self.kernel_pool, self.execution_log, self.rooms, settings.max_output_bytes
        )
        self.notebooks = Notebooks(
            self.contents,
            self.rooms,
            self.kernels,
            self.kernel_pool,
            self.sharing,
            self.users,
            self.worker,
            trash_days=settings.trash_days,
            max_upload_bytes=settings.max_upload_bytes,
        )
        self.classroom = Classroom(
            self.authorizer, self.sharing, self.rooms, self.contents, self.history
        )
        self._stack = contextlib.AsyncExitStack()

    def create_tables(self) -> None:
        schema.metadata.create_all(self.db)
        contents_module.metadata.create_all(self.db)

    async def start(self) -> None:
        await asyncio.to_thread(self.create_tables)
        await self._stack.enter_async_context(self.store)
        await self._stack.enter_async_context(self.worker)
        await self._stack.enter_async_context(self.rooms)
        await self._stack.enter_async_context(self.live)
        await self._stack.enter_async_context(self.execution_log)
        await self._stack.enter_async_context(self.kernel_pool)
        await self._stack.enter_async_context(self.kernels)
        await self._stack.enter_async_context(self.notebooks)
        for authenticator in self.authenticators:
            await authenticator.start()
            self._stack.push_async_callback(authenticator.stop)

    async def stop(self) -> None:
        await self._stack.aclose()
        self.health.close()
        self.db.dispose()
        self.store_db.dispose()
        self.executions_db.dispose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
