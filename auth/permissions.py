"""Who may do what: every rule of the server, in one place.

Identity (:mod:`auth.identity`) says who a user is; this module says what
they may do, as ``is_authorized(user, action, resource)``, the split
jupyter_server makes between its IdentityProvider and Authorizer. It does no
I/O: the caller gathers the facts (the user's role on a notebook, whether
they tutor its owner) into a :class:`Resource`, and the rules here decide.

The rules:

- Every user's files live in a folder named after them (``alice/...``); the
  owner of that folder, and every admin, is the owner of everything in it.
- A notebook's owner shares it as viewer, editor or owner (with people,
  groups, or links). Tutors watch their students' notebooks as viewers.
- A viewer sees the notebook live, its presence, kernel and history, follows
  and raises a hand. An editor also edits and runs code. An owner also
  renames, moves, deletes and shares.
- Someone with no role at all is told the thing does not exist.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .identity import User


class Role(enum.IntEnum):
    """What a user may do with a notebook; each role includes the ones below it."""

    VIEWER = 1  # see live content and presence, follow; never edit or run
    EDITOR = 2  # edit and run code (as the notebook's owner)
    OWNER = 3  # rename, delete, share

    @classmethod
    def parse(cls, text: object) -> Role:
        if isinstance(text, str) and text.upper() in cls.__members__:
            return cls[text.upper()]
        raise InvalidRole('role must be "viewer", "editor" or "owner"')

    @property
    def label(self) -> str:
        return self.name.lower()


class InvalidRole(ValueError):
    """A role name that is not one of ours."""


class PermissionDenied(PermissionError):
    """The user may see this but not do that to it."""


class Hidden(LookupError):
    """The user may not even know this exists; callers answer as for a missing thing."""


class Action(enum.Enum):
    """Everything a user can ask the server to do, each with its own rule below."""

    VIEW = "view"  # open, read, download, list a folder, see presence and kernel status
    EDIT = "edit"  # change the document
    RUN = "run"  # execute cells
    ANSWER_INPUT = "answer input"  # the input() prompt of one's own run
    INTERRUPT = "interrupt"
    RESTART = "restart"  # restart or shut down the kernel
    SHARE = "share"  # see, add and remove shares
    LINK = "link"  # create and revoke share links
    CREATE = "create"  # create, upload or move something into a folder
    RENAME = "rename"  # rename within the owner's folder
    MOVE = "move"  # move to another user's folder
    DELETE = "delete"
    RAISE_HAND = "raise hand"
    LOWER_HAND = "lower hand"  # someone else's hand
    SEE_HISTORY = "see history"  # the executions of a notebook
    REBUILD = "rebuild"  # make a notebook from a notebook's executions
    SEE_IN_DASHBOARD = "see in a dashboard"  # a student's notebook, for their tutor
    SEE_EVERYONES_HISTORY = "see everyone's history"  # across the server
    MANAGE_USERS = "manage users"  # users, groups, admins
    SEE_METRICS = "see metrics"  # the server's /metrics (rooms, kernels, logins...)


# The least role each notebook action needs.
NEEDS: dict[Action, Role] = {
    Action.VIEW: Role.VIEWER,
    Action.EDIT: Role.EDITOR,
    Action.RUN: Role.EDITOR,
    Action.ANSWER_INPUT: Role.EDITOR,
    Action.INTERRUPT: Role.EDITOR,
    Action.RESTART: Role.EDITOR,
    Action.SHARE: Role.OWNER,
    Action.LINK: Role.OWNER,
    Action.CREATE: Role.OWNER,
    Action.RENAME: Role.OWNER,
    Action.MOVE: Role.OWNER,
    Action.DELETE: Role.OWNER,
    Action.RAISE_HAND: Role.VIEWER,
    Action.LOWER_HAND: Role.EDITOR,
    Action.SEE_HISTORY: Role.VIEWER,
    Action.REBUILD: Role.VIEWER,
    Action.SEE_IN_DASHBOARD: Role.VIEWER,
}

SERVER_ACTIONS = frozenset(
    {Action.SEE_EVERYONES_HISTORY, Action.MANAGE_USERS, Action.SEE_METRICS}
)


def owner_name(path: str) -> str:
    """The owner of whatever is at ``path``: the name of its top-level folder."""
    return path.strip("/").split("/", 1)[0]


def renaming(old_path: str, new_path: str) -> Action:
    """What changing ``old_path`` to ``new_path`` is: a RENAME in its folder, else a MOVE."""
    return Action.RENAME if old_path.rpartition("/")[0] == new_path.rpartition("/")[0] else Action.MOVE


@dataclass(frozen=True, slots=True)
class Resource:
    """What an action is done to, with the facts the rules need.

    Args:
        path: the notebook, file or folder ("" is the root; None: the server).
        shared: the best role given to the user by shares and links, if any.
        tutor: the user tutors the owner of ``path``.
        subject: the user an action is about (whose hand is lowered, who ran the cell
            whose input() is answered).
        target: where a rename or move goes.
    """

    path: str | None = None
    shared: Role | None = None
    tutor: bool = False
    subject: str = ""
    target: str = ""

    @property
    def owner(self) -> str:
        return owner_name(self.path or "")

    @property
    def is_home(self) -> bool:
        """A user's own top-level folder."""
        path = (self.path or "").strip("/")
        return path != "" and "/" not in path


SERVER = Resource()


def role_of(user: User, resource: Resource) -> Role | None:
    """The user's role on ``resource``: owners and admins own, shares and tutors grant."""
    if user.admin or (resource.path and resource.owner == user.name):
        return Role.OWNER
    roles = [r for r in (resource.shared, Role.VIEWER if resource.tutor else None) if r]
    return max(roles, default=None)


def check(user: User, action: Action, resource: Resource) -> None:
    """Raise Hidden or PermissionDenied unless ``user`` may do ``action`` to ``resource``."""
    if action in SERVER_ACTIONS:
        if not user.admin:
            raise PermissionDenied(f"only admins may {action.value}")
        return
    if resource.path is None:
        raise ValueError(f"{action.value} needs a notebook, file or folder")
    role = role_of(user, resource)
    if role is None and action == Action.CREATE:
        raise PermissionDenied("only the owner of this folder can do that")
    if role is None:
        raise Hidden(f"no file or folder {resource.path!r}")
    if action == Action.LOWER_HAND and (resource.subject == user.name or resource.tutor):
        return  # your own hand, or your student's
    if action in (Action.RENAME, Action.MOVE, Action.DELETE) and resource.is_home and not user.admin:
        raise PermissionDenied(f"a user's own folder cannot be {_past(action)}")
    if action in (Action.RENAME, Action.MOVE) and owner_name(resource.target) != resource.owner:
        if not user.admin:
            raise PermissionDenied("only admins move things into another user's folder")
    needed = NEEDS[action]
    if role < needed:
        raise PermissionDenied(f"you need the {needed.label} role to {action.value}")
    if action == Action.ANSWER_INPUT and resource.subject != user.name:
        raise PermissionDenied(f"only {resource.subject} may answer the input of their run")


def role_allows(role: Role, action: Action) -> bool:
    """Whether a role already established (an open socket's) allows a notebook action."""
    return role >= NEEDS[action]


def is_authorized(user: User, action: Action, resource: Resource) -> bool:
    """Whether ``user`` may do ``action`` to ``resource``."""
    try:
        check(user, action, resource)
    except (Hidden, PermissionDenied):
        return False
    return True


def _past(action: Action) -> str:
    return {Action.RENAME: "renamed", Action.MOVE: "moved", Action.DELETE: "deleted"}[action]
