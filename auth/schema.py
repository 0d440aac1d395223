"""The tables of users, credentials, groups and shares (SQLAlchemy Core).

Every change that can take access away (a revoked token or share, an ended
session, a group membership removed) also bumps ``auth_epoch``, so a running
server notices changes made by another process (the CLI) and rechecks its
open sockets.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    select,
    update,
)

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("admin", Boolean, nullable=False, default=False),
    # Which login method created the user: "local" (CLI, admin API), "pam", "oauth".
    Column("provider", String(16), nullable=False, default="local"),
    Column("created_at", Float, nullable=False),
    Column("last_login", Float, nullable=True),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    Column("prefix", String(8), nullable=False),
    Column("note", String(255), nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("last_used", Float, nullable=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("address", String(64), nullable=False, default=""),
    Column("user_agent", String(255), nullable=False, default=""),
)

oauth_identities = Table(
    "oauth_identities",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("issuer", String(512), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("issuer", "subject"),
)

groups = Table(
    "groups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

group_members = Table(
    "group_members",
    metadata,
    Column("group_id", Integer, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)

shares = Table(
    "shares",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notebook_id", String(64), nullable=False, index=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column("group_id", Integer, ForeignKey("groups.id", ondelete="CASCADE"), nullable=True),
    Column("role", String(16), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("notebook_id", "user_id", "group_id"),
)

share_links = Table(
    "share_links",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notebook_id", String(64), nullable=False, index=True),
    Column("hash", String(64), nullable=False, unique=True),
    Column("prefix", String(8), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
)

link_grants = Table(
    "link_grants",
    metadata,
    Column("link_id", Integer, ForeignKey("share_links.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", Float, nullable=False),
)

auth_epoch = Table(
    "auth_epoch",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("value", Integer, nullable=False),
)


def bump_epoch(conn: Connection) -> None:
    """Record, inside the caller's transaction, that access may have been taken away."""
    if conn.execute(update(auth_epoch).where(auth_epoch.c.id == 1).values(
        value=auth_epoch.c.value + 1
    )).rowcount == 0:
        conn.execute(auth_epoch.insert().values(id=1, value=1))


def read_epoch(conn: Connection) -> int:
    value = conn.execute(select(auth_epoch.c.value).where(auth_epoch.c.id == 1)).scalar()
    return int(value or 0)


# A session's last_seen and a token's last_used are written at most this often, not per request.
TOUCH_INTERVAL = 60.0


def hash_secret(secret: str) -> str:
    """Secrets (tokens, session ids, link codes) are 256-bit random: a plain SHA-256 is enough."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
