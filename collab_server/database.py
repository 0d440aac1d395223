"""SQLAlchemy engines: SQLite (WAL) by default, any SQLAlchemy URL otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url


def open_engine(url: str, sqlite_synchronous: str = "NORMAL") -> Engine:
    """Create an engine; for SQLite, create its folder and use WAL mode.

    WAL with ``synchronous=NORMAL`` survives a crash of the server process
    (what a SIGKILL is); ``FULL`` also survives power loss, at a cost.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={sqlite_synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Give the WAL file back after checkpoints (snapshots are rewritten whole).
        cursor.execute("PRAGMA journal_size_limit=4194304")
        cursor.close()

    return engine


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"
