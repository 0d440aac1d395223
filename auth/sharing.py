"""What the database grants on a notebook: shares, share links and tutor groups.

The rules that turn these grants into what a user may do are in
:mod:`auth.permissions`. A notebook belongs to the user whose folder holds it (``alice/...`` is
Alice's). Its owner shares it with users or groups as viewer, editor or
owner, or makes a link that carries a role and an expiry: whoever opens the
link while it is valid gets that role for as long as the link stays valid
(revoking or expiring it takes the access away again). Members of a tutor
group may watch, as viewers, every notebook of the members of the student
groups linked to it. Admins are owners of everything.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update

from .identity import User
from .permissions import Role, owner_name
from .schema import (
    bump_epoch,
    group_members,
    groups,
    hash_secret,
    link_grants,
    share_links,
    shares,
    users,
)
from .users import UnknownGroup, UnknownUser

LINK_PREFIX_LENGTH = 6


class InvalidShare(ValueError):
    """A share or link request that makes no sense (bad role, sharing with the owner...)."""


class InvalidLink(LookupError):
    """A share link that does not exist, was revoked or has expired."""


@dataclass(frozen=True, slots=True)
class ShareInfo:
    id: int
    kind: str  # "user" or "group"
    name: str
    role: str
    created_by: str
    created_at: float


@dataclass(frozen=True, slots=True)
class LinkInfo:
    id: int
    prefix: str
    role: str
    created_by: str
    created_at: float
    expires_at: float | None
    revoked: bool
    users: int  # how many people opened it


class Sharing:
    """Shares, links and role resolution. Methods block; call them from a thread.

    Args:
        engine: the main database.
        tutor_groups: tutor group name -> the student groups its members may watch.
    """

    def __init__(self, engine: Engine, tutor_groups: Mapping[str, Sequence[str]] = {}) -> None:
        self.engine = engine
        self.tutor_groups = {k: list(v) for k, v in tutor_groups.items()}

    # ---- roles -----------------------------------------------------------------------

    def grants(self, user: User, notebook_id: str, path: str) -> tuple[Role | None, bool]:
        """What the database grants ``user`` on a notebook: (best shared role, tutors its owner).

        Ownership and admin rights are not looked up here: they follow from the
        path and the user (see :func:`auth.permissions.role_of`).
        """
        now = time.time()
        with self.engine.begin() as conn:
            member_of = select(group_members.c.group_id).where(
                group_members.c.user_id == user.id
            )
            roles = [
                Role.parse(r)
                for r in conn.execute(
                    select(shares.c.role).where(
                        shares.c.notebook_id == notebook_id,
                        or_(shares.c.user_id == user.id, shares.c.group_id.in_(member_of)),
                    )
                ).scalars()
            ]
            roles += [
                Role.parse(r)
                for r in conn.execute(
                    select(share_links.c.role)
                    .join(link_grants, link_grants.c.link_id == share_links.c.id)
                    .where(
                        share_links.c.notebook_id == notebook_id,
                        link_grants.c.user_id == user.id,
                        share_links.c.revoked_at.is_(None),
                        or_(share_links.c.expires_at.is_(None), share_links.c.expires_at > now),
                    )
                ).scalars()
            ]
            tutor = self.is_tutor_of(conn, user, owner_name(path))
        return max(roles, default=None), tutor

    def is_tutor_of(self, conn: Connection, user: User, student: str) -> bool:
        """Whether ``user`` may watch ``student``'s notebooks through a tutor group."""
        student_groups = self.student_groups_of(conn, user)
        if not student_groups:
            return False
        row = conn.execute(
            select(group_members.c.user_id)
            .join(groups, groups.c.id == group_members.c.group_id)
            .join(users, users.c.id == group_members.c.user_id)
            .where(users.c.name == student, groups.c.name.in_(student_groups))
            .limit(1)
        ).first()
        return row is not None

    def tutors(self, user: User, student: str) -> bool:
        """Whether ``user`` is a tutor of ``student`` (blocking; call from a thread)."""
        with self.engine.begin() as conn:
            return self.is_tutor_of(conn, user, student)

    def student_groups_of(self, conn: Connection, user: User) -> list[str]:
        """The student groups a user may watch through the tutor groups they belong to."""
        if not self.tutor_groups:
            return []
        mine = conn.execute(
            select(groups.c.name)
            .join(group_members, group_members.c.group_id == groups.c.id)
            .where(group_members.c.user_id == user.id, groups.c.name.in_(list(self.tutor_groups)))
        ).scalars()
        return sorted({s for tutor in mine for s in self.tutor_groups[tutor]})

    def students_of(self, user: User) -> list[str]:
        """Names of the users whose notebooks ``user`` may watch as a tutor."""
        with self.engine.begin() as conn:
            student_groups = self.student_groups_of(conn, user)
            if not student_groups:
                return []
            return sorted(
                set(
                    conn.execute(
                        select(users.c.name)
                        .join(group_members, group_members.c.user_id == users.c.id)
                        .join(groups, groups.c.id == group_members.c.group_id)
                        .where(groups.c.name.in_(student_groups), users.c.id != user.id)
                    ).scalars()
                )
            )

    def shared_with(self, user: User) -> dict[str, Role]:
        """Notebook id -> role, for notebooks shared with the user (directly, by group or link)."""
        now = time.time()
        result: dict[str, Role] = {}
        with self.engine.begin() as conn:
            member_of = select(group_members.c.group_id).where(
                group_members.c.user_id == user.id
            )
            rows = list(conn.execute(
                select(shares.c.notebook_id, shares.c.role).where(
                    or_(shares.c.user_id == user.id, shares.c.group_id.in_(member_of))
                )
            ).all())
            rows += conn.execute(
                select(share_links.c.notebook_id, share_links.c.role)
                .join(link_grants, link_grants.c.link_id == share_links.c.id)
                .where(
                    link_grants.c.user_id == user.id,
                    share_links.c.revoked_at.is_(None),
                    or_(share_links.c.expires_at.is_(None), share_links.c.expires_at > now),
                )
            ).all()
        for notebook_id, role in rows:
            result[notebook_id] = max(result.get(notebook_id, Role.VIEWER), Role.parse(role))
        return result

    # ---- shares ----------------------------------------------------------------------

    def share(
        self, notebook_id: str, path: str, role: Role, by: str,
        user: str | None = None, group: str | None = None,
    ) -> ShareInfo:
        """Share with one user or one group (replacing an earlier role); returns the share."""
        if (user is None) == (group is None):
            raise InvalidShare('share with exactly one of "user" or "group"')
        if user is not None and user == owner_name(path):
            raise InvalidShare("the owner already has every right on this notebook")
        with self.engine.begin() as conn:
            user_id = group_id = None
            if user is not None:
                user_id = conn.execute(select(users.c.id).where(users.c.name == user)).scalar()
                if user_id is None:
                    raise UnknownUser(f"no user named {user!r}")
            else:
                group_id = conn.execute(select(groups.c.id).where(groups.c.name == group)).scalar()
                if group_id is None:
                    raise UnknownGroup(f"no group named {group!r}")
            where = and_(
                shares.c.notebook_id == notebook_id,
                shares.c.user_id.is_(None) if user_id is None else shares.c.user_id == user_id,
                shares.c.group_id.is_(None) if group_id is None else shares.c.group_id == group_id,
            )
            existing = conn.execute(select(shares.c.id).where(where)).scalar()
            now = time.time()
            if existing is None:
                conn.execute(
                    insert(shares).values(
                        notebook_id=notebook_id, user_id=user_id, group_id=group_id,
                        role=role.label, created_by=by, created_at=now,
                    )
                )
            else:
                conn.execute(update(shares).where(shares.c.id == existing).values(role=role.label))
            bump_epoch(conn)
            share_id = conn.execute(select(shares.c.id).where(where)).scalar_one()
        return next(s for s in self.list_shares(notebook_id) if s.id == share_id)

    def list_shares(self, notebook_id: str) -> list[ShareInfo]:
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(
                    shares,
                    users.c.name.label("user_name"),
                    groups.c.name.label("group_name"),
                )
                .outerjoin(users, users.c.id == shares.c.user_id)
                .outerjoin(groups, groups.c.id == shares.c.group_id)
                .where(shares.c.notebook_id == notebook_id)
                .order_by(shares.c.id)
            ).all()
        return [
            ShareInfo(
                r.id,
                "user" if r.user_id is not None else "group",
                r.user_name if r.user_id is not None else r.group_name,
                r.role,
                r.created_by,
                r.created_at,
            )
            for r in rows
        ]

    def unshare(self, notebook_id: str, share_id: int) -> None:
        with self.engine.begin() as conn:
            deleted = conn.execute(
                delete(shares).where(shares.c.id == share_id, shares.c.notebook_id == notebook_id)
            ).rowcount
            if deleted == 0:
                raise InvalidShare(f"no share {share_id} on this notebook")
            bump_epoch(conn)

    # ---- links -----------------------------------------------------------------------

    def create_link(
        self, notebook_id: str, role: Role, by: str, expires_at: float | None
    ) -> tuple[LinkInfo, str]:
        """A new share link; returns it and its secret code (shown once, stored hashed)."""
        if role == Role.OWNER:
            raise InvalidShare("a link can grant viewer or editor, not owner")
        if expires_at is not None and expires_at <= time.time():
            raise InvalidShare("the expiry must be in the future")
        code = secrets.token_urlsafe(24)
        with self.engine.begin() as conn:
            key = conn.execute(
                insert(share_links).values(
                    notebook_id=notebook_id, hash=hash_secret(code),
                    prefix=code[:LINK_PREFIX_LENGTH], role=role.label, created_by=by,
                    created_at=time.time(), expires_at=expires_at,
                )
            ).inserted_primary_key
        assert key is not None
        link = next(x for x in self.list_links(notebook_id) if x.id == int(key[0]))
        return link, code

    def list_links(self, notebook_id: str) -> list[LinkInfo]:
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(share_links, func.count(link_grants.c.user_id).label("uses"))
                .outerjoin(link_grants, link_grants.c.link_id == share_links.c.id)
                .where(share_links.c.notebook_id == notebook_id)
                .group_by(share_links.c.id)
                .order_by(share_links.c.id)
            ).all()
        return [
            LinkInfo(r.id, r.prefix, r.role, r.created_by, r.created_at, r.expires_at,
                     r.revoked_at is not None, int(r.uses))
            for r in rows
        ]

    def revoke_link(self, notebook_id: str, link_id: int) -> None:
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(share_links)
                .where(share_links.c.id == link_id, share_links.c.notebook_id == notebook_id)
                .values(revoked_at=time.time())
            ).rowcount
            if changed == 0:
                raise InvalidShare(f"no link {link_id} on this notebook")
            bump_epoch(conn)

    def link_target(self, code: str) -> tuple[int, str, Role]:
        """(link id, notebook id, role) of a valid link code; InvalidLink otherwise."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(share_links).where(share_links.c.hash == hash_secret(code))
            ).first()
        if row is None or row.revoked_at is not None:
            raise InvalidLink("this share link does not exist or was revoked")
        if row.expires_at is not None and row.expires_at <= time.time():
            raise InvalidLink("this share link has expired")
        return row.id, row.notebook_id, Role.parse(row.role)

    def redeem_link(self, code: str, user: User) -> tuple[str, Role]:
        """Give ``user`` the link's role on its notebook; returns (notebook id, role)."""
        link_id, notebook_id, role = self.link_target(code)
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(link_grants).where(
                    link_grants.c.link_id == link_id, link_grants.c.user_id == user.id
                )
            ).first()
            if exists is None:
                conn.execute(
                    insert(link_grants).values(
                        link_id=link_id, user_id=user.id, created_at=time.time()
                    )
                )
        return notebook_id, role

    def forget_notebook(self, notebook_id: str) -> None:
        """Drop every share and link of a deleted notebook."""
        with self.engine.begin() as conn:
            conn.execute(delete(shares).where(shares.c.notebook_id == notebook_id))
            conn.execute(delete(share_links).where(share_links.c.notebook_id == notebook_id))
            bump_epoch(conn)
