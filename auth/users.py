"""Users and groups: created by login, the CLI or the admin API."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace

from sqlalchemy import Connection, Engine, delete, insert, select, update

from .identity import User
from .schema import bump_epoch, group_members, groups, oauth_identities, users

# Names become folder names (each user's notebooks live in a folder of that name).
NAME_PATTERN = re.compile(r"^[a-z0-9_][a-z0-9_.@-]{0,63}$")


class UnknownUser(LookupError):
    """No user has this name."""


class UnknownGroup(LookupError):
    """No group has this name."""


class InvalidName(ValueError):
    """A user or group name that is not allowed."""


class LoginConflict(PermissionError):
    """The name belongs to an account created by another login method."""


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    admin: bool
    provider: str
    created_at: float
    last_login: float | None
    groups: list[str]


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name) or name.startswith("."):
        raise InvalidName(
            f"invalid name {name[:80]!r}: use 1-64 lowercase letters, digits, '_', '.', '@' or '-'"
        )
    return name


def _user(row: object) -> User:
    return User(row.id, row.name, bool(row.admin), row.provider)  # type: ignore[attr-defined]


class Users:
    """The users table and the groups users belong to.

    All methods block on the database; call them from a thread.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- users -----------------------------------------------------------------------

    def get_or_create(self, name: str, admin: bool = False, provider: str = "local") -> User:
        with self.engine.begin() as conn:
            return self._get_or_create(conn, name, admin, provider)

    def _get_or_create(self, conn: Connection, name: str, admin: bool, provider: str) -> User:
        row = conn.execute(select(users).where(users.c.name == name)).first()
        if row is None:
            check_name(name)
            key = conn.execute(
                insert(users).values(
                    name=name, admin=admin, provider=provider, created_at=time.time()
                )
            ).inserted_primary_key
            assert key is not None
            return User(int(key[0]), name, admin, provider)
        if admin and not row.admin:
            conn.execute(update(users).where(users.c.id == row.id).values(admin=True))
        return User(row.id, row.name, bool(row.admin or admin), row.provider)

    def get(self, name: str) -> User:
        with self.engine.begin() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        if row is None:
            raise UnknownUser(f"no user named {name!r}")
        return _user(row)

    def by_id(self, user_id: int) -> User | None:
        with self.engine.begin() as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).first()
        return None if row is None else _user(row)

    def login(self, name: str, provider: str, admin: bool) -> User:
        """The user a password login (PAM) resolves to, created on first login.

        Raises LoginConflict if ``name`` was created by another login method
        (an OAuth account never becomes a unix account's, or the reverse).
        """
        with self.engine.begin() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
            if row is not None and row.provider not in (provider, "local"):
                raise LoginConflict(
                    f"the name {name!r} belongs to an account that signs in another way"
                )
            user = self._get_or_create(conn, name, admin, provider)
            # An account an admin created ahead of time now belongs to this login method.
            conn.execute(
                update(users)
                .where(users.c.id == user.id)
                .values(last_login=time.time(), provider=provider)
            )
            return replace(user, provider=provider)

    def oauth_account_name(self, issuer: str, subject: str, preferred_name: str) -> str:
        """The name :meth:`login_oauth` would give this identity now (nothing is written)."""
        with self.engine.begin() as conn:
            name = conn.execute(
                select(users.c.name)
                .join(oauth_identities, oauth_identities.c.user_id == users.c.id)
                .where(oauth_identities.c.issuer == issuer, oauth_identities.c.subject == subject)
            ).scalar()
            return str(name) if name is not None else self._free_name(conn, check_name(preferred_name))

    def login_oauth(
        self, issuer: str, subject: str, preferred_name: str, admin: bool, expect_name: str = ""
    ) -> User:
        """The user of an OAuth identity, keyed by (issuer, subject), created on first login.

        A new user gets ``preferred_name`` or, if taken, ``preferred_name-2``,
        ``-3``...: an identity never takes over an existing account by name.
        With ``expect_name``, raises LoginConflict (writing nothing) if the
        account would have another name (someone took it meanwhile).
        """
        if expect_name and self.oauth_account_name(issuer, subject, preferred_name) != expect_name:
            raise LoginConflict("the account name changed during login; try again")
        with self.engine.begin() as conn:
            row = conn.execute(
                select(users)
                .join(oauth_identities, oauth_identities.c.user_id == users.c.id)
                .where(oauth_identities.c.issuer == issuer, oauth_identities.c.subject == subject)
            ).first()
            if row is not None:
                user = self._get_or_create(conn, row.name, admin, "oauth")
            else:
                name = self._free_name(conn, check_name(preferred_name))
                user = self._get_or_create(conn, name, admin, "oauth")
                conn.execute(
                    insert(oauth_identities).values(
                        issuer=issuer, subject=subject, user_id=user.id, created_at=time.time()
                    )
                )
            conn.execute(
                update(users).where(users.c.id == user.id).values(last_login=time.time())
            )
            return user

    def _free_name(self, conn: Connection, name: str) -> str:
        taken = set(
            conn.execute(
                select(users.c.name).where(
                    (users.c.name == name) | users.c.name.like(f"{name}-%")
                )
            ).scalars()
        )
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            candidate = f"{name[:60]}-{n}"
        return candidate

    def list_users(self) -> list[UserInfo]:
        with self.engine.begin() as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).all()
            memberships = conn.execute(
                select(group_members.c.user_id, groups.c.name)
                .join(groups, groups.c.id == group_members.c.group_id)
                .order_by(groups.c.name)
            ).all()
        by_user: dict[int, list[str]] = {}
        for user_id, group in memberships:
            by_user.setdefault(user_id, []).append(group)
        return [
            UserInfo(r.name, bool(r.admin), r.provider, r.created_at, r.last_login,
                     by_user.get(r.id, []))
            for r in rows
        ]

    def set_admin(self, name: str, admin: bool) -> User:
        with self.engine.begin() as conn:
            result = conn.execute(update(users).where(users.c.name == name).values(admin=admin))
            if result.rowcount == 0:
                raise UnknownUser(f"no user named {name!r}")
            bump_epoch(conn)
        return self.get(name)

    def delete_user(self, name: str) -> None:
        """Delete a user with their tokens, sessions and shares (not their notebooks)."""
        with self.engine.begin() as conn:
            if conn.execute(delete(users).where(users.c.name == name)).rowcount == 0:
                raise UnknownUser(f"no user named {name!r}")
            bump_epoch(conn)

    # ---- groups ----------------------------------------------------------------------

    def create_group(self, name: str) -> None:
        check_name(name)
        with self.engine.begin() as conn:
            if conn.execute(select(groups.c.id).where(groups.c.name == name)).first() is None:
                conn.execute(insert(groups).values(name=name, created_at=time.time()))

    def delete_group(self, name: str) -> None:
        with self.engine.begin() as conn:
            if conn.execute(delete(groups).where(groups.c.name == name)).rowcount == 0:
                raise UnknownGroup(f"no group named {name!r}")
            bump_epoch(conn)

    def list_groups(self) -> dict[str, list[str]]:
        """Group name -> member names."""
        with self.engine.begin() as conn:
            names = conn.execute(select(groups.c.name).order_by(groups.c.name)).scalars().all()
            rows = conn.execute(
                select(groups.c.name, users.c.name.label("user"))
                .join(group_members, group_members.c.group_id == groups.c.id)
                .join(users, users.c.id == group_members.c.user_id)
                .order_by(users.c.name)
            ).all()
        result: dict[str, list[str]] = {name: [] for name in names}
        for group, user in rows:
            result[group].append(user)
        return result

    def add_member(self, group: str, name: str) -> None:
        with self.engine.begin() as conn:
            group_id = self._group_id(conn, group)
            user_id = conn.execute(select(users.c.id).where(users.c.name == name)).scalar()
            if user_id is None:
                raise UnknownUser(f"no user named {name!r}")
            exists = conn.execute(
                select(group_members).where(
                    group_members.c.group_id == group_id, group_members.c.user_id == user_id
                )
            ).first()
            if exists is None:
                conn.execute(insert(group_members).values(group_id=group_id, user_id=user_id))

    def remove_member(self, group: str, name: str) -> None:
        with self.engine.begin() as conn:
            group_id = self._group_id(conn, group)
            user_id = conn.execute(select(users.c.id).where(users.c.name == name)).scalar()
            if user_id is None:
                raise UnknownUser(f"no user named {name!r}")
            conn.execute(
                delete(group_members).where(
                    group_members.c.group_id == group_id, group_members.c.user_id == user_id
                )
            )
            bump_epoch(conn)

    def _group_id(self, conn: Connection, name: str) -> int:
        group_id = conn.execute(select(groups.c.id).where(groups.c.name == name)).scalar()
        if group_id is None:
            raise UnknownGroup(f"no group named {name!r}")
        return int(group_id)

    def groups_of(self, user_id: int) -> list[str]:
        with self.engine.begin() as conn:
            return list(
                conn.execute(
                    select(groups.c.name)
                    .join(group_members, group_members.c.group_id == groups.c.id)
                    .where(group_members.c.user_id == user_id)
                    .order_by(groups.c.name)
                ).scalars()
            )
