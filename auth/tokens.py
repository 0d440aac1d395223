"""Users and their API tokens.

A token is shown once, when created; only its SHA-256 is stored (tokens are
256-bit random, so a plain hash is enough, as in JupyterHub). Requests present
it as ``Authorization: token <t>``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select, update

from .identity import Credentials, User
from .schema import TOUCH_INTERVAL, api_tokens, bump_epoch, hash_secret, users
from .users import Users

TOKEN_PREFIX_LENGTH = 4


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    username: str
    prefix: str
    note: str
    created_at: float
    last_used: float | None


class Tokens:
    """API tokens: create, list, revoke, and identify requests by them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.users = Users(engine)

    def create(self, username: str, note: str = "") -> str:
        """Create a token for ``username`` (creating the user if needed); return it."""
        user = self.users.get_or_create(username)
        token = secrets.token_hex(32)
        with self.engine.begin() as conn:
            conn.execute(
                insert(api_tokens).values(
                    user_id=user.id,
                    hash=hash_secret(token),
                    prefix=token[:TOKEN_PREFIX_LENGTH],
                    note=note,
                    created_at=time.time(),
                )
            )
        return token

    def list_tokens(self, username: str | None = None) -> list[TokenInfo]:
        query = (
            select(api_tokens, users.c.name)
            .join(users, users.c.id == api_tokens.c.user_id)
            .order_by(api_tokens.c.id)
        )
        if username is not None:
            query = query.where(users.c.name == username)
        with self.engine.begin() as conn:
            rows = conn.execute(query).all()
        return [
            TokenInfo(r.id, r.name, r.prefix, r.note, r.created_at, r.last_used) for r in rows
        ]

    def revoke(self, token_id: int) -> bool:
        """Revoke a token by id; False if there was none."""
        with self.engine.begin() as conn:
            result = conn.execute(delete(api_tokens).where(api_tokens.c.id == token_id))
            bump_epoch(conn)
        return result.rowcount > 0

    def user_for_token(self, token: str) -> User | None:
        with self.engine.begin() as conn:
            row = conn.execute(
                select(
                    users.c.id,
                    users.c.name,
                    users.c.admin,
                    users.c.provider,
                    api_tokens.c.id.label("tid"),
                    api_tokens.c.last_used,
                )
                .join(api_tokens, users.c.id == api_tokens.c.user_id)
                .where(api_tokens.c.hash == hash_secret(token))
            ).first()
            if row is None:
                return None
            # Written at most once per interval, as sessions do: a write per request
            # made every API call a database commit.
            now = time.time()
            if row.last_used is None or now - row.last_used > TOUCH_INTERVAL:
                conn.execute(
                    update(api_tokens).where(api_tokens.c.id == row.tid).values(last_used=now)
                )
        return User(row.id, row.name, bool(row.admin), row.provider)


class TokenIdentityProvider:
    """Identifies requests by ``Authorization: token <t>`` (or ``?token=`` on WebSockets)."""

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    async def identify(self, credentials: Credentials) -> User | None:
        token = parse_authorization(credentials.headers.get("Authorization", ""))
        if token is None:
            token = credentials.query_token
        if not token:
            return None
        return await asyncio.to_thread(self.tokens.user_for_token, token)


def parse_authorization(header: str) -> str | None:
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return None
