"""Every action against every kind of user: the whole rule table of auth.permissions.

The resource is Alice's notebook ``alice/nb.ipynb`` as the authorizer
describes it to each user: nothing shared with mallory, shared as viewer with
vic and as editor with bob, alice owns it, ada is an admin, tina tutors
alice. "ok" is allowed, 403 is PermissionDenied, 404 is Hidden (may not know
it exists). End to end, tests/fuzz/test_authorization_matrix.py checks the
same rules through every HTTP endpoint of a running server.
"""

from __future__ import annotations

import pytest

from auth.identity import User
from auth.permissions import (
    Action,
    Hidden,
    PermissionDenied,
    Resource,
    Role,
    check,
    is_authorized,
)

PATH = "alice/nb.ipynb"
KINDS = ("none", "viewer", "editor", "owner", "admin", "tutor")
USERS = {
    "none": User(1, "mallory"),
    "viewer": User(2, "vic"),
    "editor": User(3, "bob"),
    "owner": User(4, "alice"),
    "admin": User(5, "ada", admin=True),
    "tutor": User(6, "tina"),
}
GRANTS: dict[str, tuple[Role | None, bool]] = {
    "none": (None, False),
    "viewer": (Role.VIEWER, False),
    "editor": (Role.EDITOR, False),
    "owner": (None, False),
    "admin": (None, False),
    "tutor": (None, True),
}
A, D, H = "ok", 403, 404
# action: outcome for none, viewer, editor, owner, admin, tutor
TABLE: dict[Action, tuple[object, ...]] = {
    Action.VIEW: (H, A, A, A, A, A),
    Action.EDIT: (H, D, A, A, A, D),
    Action.RUN: (H, D, A, A, A, D),
    Action.ANSWER_INPUT: (H, D, A, A, A, D),  # their own run's prompt (below: someone else's)
    Action.INTERRUPT: (H, D, A, A, A, D),
    Action.RESTART: (H, D, A, A, A, D),
    Action.SHARE: (H, D, D, A, A, D),
    Action.LINK: (H, D, D, A, A, D),
    Action.CREATE: (D, D, D, A, A, D),
    Action.RENAME: (H, D, D, A, A, D),
    Action.MOVE: (H, D, D, A, A, D),
    Action.DELETE: (H, D, D, A, A, D),
    Action.RAISE_HAND: (H, A, A, A, A, A),
    Action.LOWER_HAND: (H, D, A, A, A, A),
    Action.SEE_HISTORY: (H, A, A, A, A, A),
    Action.REBUILD: (H, A, A, A, A, A),
    Action.SEE_IN_DASHBOARD: (H, A, A, A, A, A),
    Action.SEE_EVERYONES_HISTORY: (D, D, D, D, A, D),
    Action.MANAGE_USERS: (D, D, D, D, A, D),
    Action.SEE_METRICS: (D, D, D, D, A, D),
}


def outcome(user: User, action: Action, resource: Resource) -> object:
    try:
        check(user, action, resource)
    except Hidden:
        return H
    except PermissionDenied:
        return D
    return A


def resource_for(kind: str, action: Action, **facts: str) -> Resource:
    shared, tutor = GRANTS[kind]
    if action == Action.ANSWER_INPUT:
        return Resource(PATH, shared, tutor, subject=USERS[kind].name)
    if action == Action.CREATE:
        # A new path: nothing is shared on it, it is in alice's folder.
        return Resource("alice/new.ipynb", tutor=tutor, **facts)
    return Resource(PATH, shared, tutor, target=facts.get("target", "alice/renamed.ipynb"))


def test_every_action_has_a_row() -> None:
    assert set(TABLE) == set(Action)


@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.name)
@pytest.mark.parametrize("kind", KINDS)
def test_rule_table(action: Action, kind: str) -> None:
    expected = TABLE[action][KINDS.index(kind)]
    resource = resource_for(kind, action)
    assert outcome(USERS[kind], action, resource) == expected
    assert is_authorized(USERS[kind], action, resource) == (expected == A)


def test_a_viewer_lowers_their_own_hand_only() -> None:
    vic = USERS["viewer"]
    assert outcome(vic, Action.LOWER_HAND, Resource(PATH, Role.VIEWER, subject="vic")) == A
    assert outcome(vic, Action.LOWER_HAND, Resource(PATH, Role.VIEWER, subject="bob")) == D
    # Someone with no role cannot lower even "their own" hand there: they cannot see it.
    assert outcome(USERS["none"], Action.LOWER_HAND, Resource(PATH, subject="mallory")) == H


def test_only_the_one_who_ran_a_cell_answers_its_input() -> None:
    bobs_run = Resource(PATH, Role.EDITOR, subject="bob")
    assert outcome(USERS["editor"], Action.ANSWER_INPUT, bobs_run) == A
    for kind in ("owner", "admin"):
        assert outcome(USERS[kind], Action.ANSWER_INPUT, bobs_run) == D


def test_home_folders_are_neither_deleted_nor_renamed_by_their_owner() -> None:
    alice, ada = USERS["owner"], USERS["admin"]
    for action in (Action.DELETE, Action.RENAME, Action.MOVE):
        assert outcome(alice, action, Resource("alice", target="alicia")) == D
        assert outcome(ada, action, Resource("alice", target="alicia")) == A
    assert outcome(alice, Action.DELETE, Resource("alice/sub")) == A


def test_only_admins_move_things_into_another_users_folder() -> None:
    moved = Resource(PATH, target="bob/nb.ipynb")
    assert outcome(USERS["owner"], Action.MOVE, moved) == D
    assert outcome(USERS["admin"], Action.MOVE, moved) == A
    # An owner by share moves within the owner's folder, never out of it.
    carol = User(7, "carol")
    assert outcome(carol, Action.MOVE, Resource(PATH, Role.OWNER, target="alice/x/nb.ipynb")) == A
    assert outcome(carol, Action.MOVE, Resource(PATH, Role.OWNER, target="carol/nb.ipynb")) == D


def test_the_best_of_share_and_tutor_grants_counts() -> None:
    tina = USERS["tutor"]
    assert outcome(tina, Action.EDIT, Resource(PATH, Role.EDITOR, tutor=True)) == A
    assert outcome(tina, Action.SHARE, Resource(PATH, Role.EDITOR, tutor=True)) == D


def test_folders_and_files_are_their_owners_alone() -> None:
    assert outcome(USERS["none"], Action.VIEW, Resource("alice")) == H
    assert outcome(USERS["none"], Action.VIEW, Resource("alice/data.csv")) == H
    assert outcome(USERS["owner"], Action.VIEW, Resource("alice/data.csv")) == A
