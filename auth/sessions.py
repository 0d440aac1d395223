"""Login sessions: a random id in a signed cookie, the session itself in the database.

The cookie holds only the session id; the row holds who it is and until when.
Logging out deletes the row, so a copied cookie stops working everywhere at
once; an expired row is refused and swept.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select, update

from .identity import Credentials, User
from .schema import TOUCH_INTERVAL, bump_epoch, hash_secret, sessions, users


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: int
    created_at: float
    expires_at: float
    last_seen: float
    address: str
    user_agent: str


class Sessions:
    """Create, look up and end login sessions. Methods block; call them from a thread."""

    def __init__(self, engine: Engine, lifetime: float = 14 * 24 * 3600) -> None:
        self.engine = engine
        self.lifetime = lifetime

    def create(self, user: User, address: str = "", user_agent: str = "") -> str:
        """Start a session for ``user``; returns the secret id to put in the cookie."""
        secret = secrets.token_urlsafe(32)
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                insert(sessions).values(
                    user_id=user.id,
                    hash=hash_secret(secret),
                    created_at=now,
                    expires_at=now + self.lifetime,
                    last_seen=now,
                    address=address[:64],
                    user_agent=user_agent[:255],
                )
            )
        return secret

    def user_for_session(self, secret: str) -> User | None:
        """The user of a live session, or None if it ended or expired."""
        now = time.time()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(
                    users.c.id, users.c.name, users.c.admin, users.c.provider,
                    sessions.c.id.label("sid"), sessions.c.expires_at, sessions.c.last_seen,
                )
                .join(sessions, sessions.c.user_id == users.c.id)
                .where(sessions.c.hash == hash_secret(secret))
            ).first()
            if row is None:
                return None
            if row.expires_at <= now:
                conn.execute(delete(sessions).where(sessions.c.id == row.sid))
                return None
            if now - row.last_seen > TOUCH_INTERVAL:
                conn.execute(update(sessions).where(sessions.c.id == row.sid).values(last_seen=now))
        return User(row.id, row.name, bool(row.admin), row.provider)

    def end(self, secret: str) -> None:
        """Log out this session."""
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.hash == hash_secret(secret)))
            bump_epoch(conn)

    def end_all(self, user_id: int) -> int:
        """Log the user out everywhere; returns how many sessions ended."""
        with self.engine.begin() as conn:
            count = conn.execute(delete(sessions).where(sessions.c.user_id == user_id)).rowcount
            bump_epoch(conn)
        return count

    def list_sessions(self, user_id: int) -> list[SessionInfo]:
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(sessions).where(sessions.c.user_id == user_id,
                                       sessions.c.expires_at > time.time())
                .order_by(sessions.c.id)
            ).all()
        return [
            SessionInfo(r.id, r.created_at, r.expires_at, r.last_seen, r.address, r.user_agent)
            for r in rows
        ]

    def sweep(self) -> int:
        """Delete expired sessions; returns how many."""
        with self.engine.begin() as conn:
            return conn.execute(delete(sessions).where(sessions.c.expires_at <= time.time())).rowcount


class SessionIdentityProvider:
    """Identifies requests by their session cookie (already verified as signed by the app)."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def identify(self, credentials: Credentials) -> User | None:
        if not credentials.session:
            return None
        return await asyncio.to_thread(self.sessions.user_for_session, credentials.session)
