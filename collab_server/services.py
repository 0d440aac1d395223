"""The long-lived parts of a running server, built from its settings."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from sqlalchemy import Engine

from auth import tokens
from auth.identity import Credentials, IdentityProvider, User
from crdt import contents as contents_module
from crdt.contents import ContentsManager
from crdt.notebook_io import NotebookWorker
from crdt.room import RoomSettings
from crdt.rooms import RoomManager
from crdt.store import UpdateStore

from .database import is_sqlite, open_engine


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
    worker_processes: int = 1
    room: RoomSettings = field(default_factory=RoomSettings)

    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'collab.db'}"

    def resolved_store_url(self) -> str:
        if self.store_url:
            return self.store_url
        db_url = self.resolved_db_url()
        return f"sqlite:///{self.data_dir / 'updates.db'}" if is_sqlite(db_url) else db_url


class Identity:
    """Asks each identity provider in turn (tokens now; sessions later)."""

    def __init__(self, providers: list[IdentityProvider]) -> None:
        self.providers = providers

    async def identify(self, credentials: Credentials) -> User | None:
        for provider in self.providers:
            user = await provider.identify(credentials)
            if user is not None:
                return user
        return None


class Services:
    """Databases, update store, notebook worker, contents and rooms.

    ``async with Services(settings) as services:`` starts them in dependency
    order and stops them in reverse, saving every open room.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.root_dir.mkdir(parents=True, exist_ok=True)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.room.checkpoint_dir = settings.data_dir / "checkpoints"
        self.db: Engine = open_engine(settings.resolved_db_url(), settings.sqlite_synchronous)
        self.store_db: Engine = open_engine(
            settings.resolved_store_url(), settings.sqlite_synchronous
        )
        self.tokens = tokens.Tokens(self.db)
        self.identity = Identity([tokens.TokenIdentityProvider(self.tokens)])
        self.contents = ContentsManager(settings.root_dir, self.db)
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
        self._stack = contextlib.AsyncExitStack()

    def create_tables(self) -> None:
        tokens.metadata.create_all(self.db)
        contents_module.metadata.create_all(self.db)

    async def start(self) -> None:
        await asyncio.to_thread(self.create_tables)
        await self._stack.enter_async_context(self.store)
        await self._stack.enter_async_context(self.worker)
        await self._stack.enter_async_context(self.rooms)

    async def stop(self) -> None:
        await self._stack.aclose()
        self.db.dispose()
        self.store_db.dispose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
