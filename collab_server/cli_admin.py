"""``collab-server user ...`` and ``collab-server group ...``: admin tasks from the shell.

They write the same database as the running server, which notices changes
that take access away within seconds (``auth_epoch``).
"""

from __future__ import annotations

import pwd
from collections.abc import Callable

from traitlets import Bool
from traitlets.config import Application

from auth.users import InvalidName, UnknownGroup, UnknownUser, Users

from .admin_db import CREATE_FLAG, AdminDatabase, CommandGroup, open_main_database
from .app import DB_ALIASES, ServerConfig
from .errors import StartupError


def _users(app: Application) -> Users:
    return Users(open_main_database(app))


class _Command(Application):
    """A subcommand taking a fixed number of arguments."""

    aliases = DB_ALIASES
    flags = CREATE_FLAG
    classes = [ServerConfig, AdminDatabase]
    usage = ""
    nargs = 1

    def run(self, users: Users, *args: str) -> None:
        raise NotImplementedError

    def start(self) -> None:
        if len(self.extra_args) != self.nargs:
            self.exit(f"usage: {self.usage}")
        try:
            self.run(_users(self), *self.extra_args)
        except (UnknownUser, UnknownGroup, InvalidName) as e:
            raise StartupError(str(e)) from None


class UserAddApp(_Command):
    """collab-server user add NAME [--admin]: add a user (e.g. before their first login)."""

    name = "collab-server user add"
    description = __doc__ or ""
    usage = "collab-server user add NAME [--admin]"
    admin = Bool(False, config=True, help="Make the user an admin.")
    flags = {**CREATE_FLAG, "admin": ({"UserAddApp": {"admin": True}}, "Make the user an admin.")}

    def run(self, users: Users, *args: str) -> None:
        user = users.get_or_create(args[0], admin=self.admin)
        print(f"user {user.name}{' (admin)' if user.admin else ''}")


class UserListApp(_Command):
    """collab-server user list: every user, whether admin, how they log in, their groups."""

    name = "collab-server user list"
    description = __doc__ or ""
    usage = "collab-server user list"
    nargs = 0

    def run(self, users: Users, *args: str) -> None:
        print(f"{'name':<24} {'admin':<6} {'login':<6} groups")
        for u in users.list_users():
            print(f"{u.name:<24} {'yes' if u.admin else 'no':<6} {u.provider:<6} {','.join(u.groups)}")


class UserRemoveApp(_Command):
    """collab-server user remove NAME: delete a user, their tokens, sessions and shares."""

    name = "collab-server user remove"
    description = __doc__ or ""
    usage = "collab-server user remove NAME"

    def run(self, users: Users, *args: str) -> None:
        users.delete_user(args[0])
        print(f"removed user {args[0]} (their notebooks stay in their folder)")


def _admin_app(admin: bool) -> type[_Command]:
    verb = "admin" if admin else "unadmin"

    class SetAdminApp(_Command):
        __doc__ = f"collab-server user {verb} NAME: {'grant' if admin else 'remove'} admin rights."
        name = f"collab-server user {verb}"
        description = __doc__ or ""
        usage = f"collab-server user {verb} NAME"

        def run(self, users: Users, *args: str) -> None:
            users.set_admin(args[0], admin)
            print(f"{args[0]} is {'now' if admin else 'no longer'} an admin")

    return SetAdminApp


def _group_app(verb: str, usage: str, nargs: int, action: Callable[[Users, list[str]], str]) -> type[_Command]:
    class GroupCommand(_Command):
        __doc__ = usage
        name = f"collab-server group {verb}"
        description = usage

        def run(self, users: Users, *args: str) -> None:
            print(action(users, list(args)))

    GroupCommand.usage = usage
    GroupCommand.nargs = nargs
    return GroupCommand


def _list_groups(users: Users, args: list[str]) -> str:
    return "\n".join(f"{g}: {' '.join(m)}" for g, m in users.list_groups().items()) or "no groups"


def _create(users: Users, args: list[str]) -> str:
    users.create_group(args[0])
    return f"group {args[0]}"


def _delete(users: Users, args: list[str]) -> str:
    users.delete_group(args[0])
    return f"deleted group {args[0]}"


def _add(users: Users, args: list[str]) -> str:
    """Add members; someone with a unix account who has not logged in yet is added too."""
    group, names = args[0], args[1:]
    if group not in users.list_groups():
        raise UnknownGroup(f"no group named {group!r}")  # before anyone is created
    created = []
    for name in names:
        try:
            users.get(name)
        except UnknownUser:
            if not unix_account_exists(name):
                raise UnknownUser(
                    f"no user named {name!r}: they appear when they first log in, "
                    f"or add them now with `collab-server user add {name}`"
                )
            users.get_or_create(name)
            created.append(name)
        users.add_member(group, name)
    note = f" (new user{'s' if len(created) > 1 else ''}: {' '.join(created)})" if created else ""
    return f"added to {group}: {' '.join(names)}{note}"


def unix_account_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _remove(users: Users, args: list[str]) -> str:
    for name in args[1:]:
        users.remove_member(args[0], name)
    return f"removed from {args[0]}: {' '.join(args[1:])}"


GROUP_COMMANDS = {
    "list": _group_app("list", "collab-server group list", 0, _list_groups),
    "create": _group_app("create", "collab-server group create GROUP", 1, _create),
    "delete": _group_app("delete", "collab-server group delete GROUP", 1, _delete),
    "add": _group_app("add", "collab-server group add GROUP USER", 2, _add),
    "remove": _group_app("remove", "collab-server group remove GROUP USER", 2, _remove),
}


class UserApp(CommandGroup):
    """Manage users."""

    name = "collab-server user"
    description = __doc__ or ""
    subcommands = {
        "add": (UserAddApp, UserAddApp.__doc__ or ""),
        "list": (UserListApp, UserListApp.__doc__ or ""),
        "remove": (UserRemoveApp, UserRemoveApp.__doc__ or ""),
        "admin": (_admin_app(True), "collab-server user admin NAME: grant admin rights."),
        "unadmin": (_admin_app(False), "collab-server user unadmin NAME: remove admin rights."),
    }


class GroupApp(CommandGroup):
    """Manage groups (used for sharing and tutor groups)."""

    name = "collab-server group"
    description = __doc__ or ""
    subcommands = {verb: (cls, cls.usage) for verb, cls in GROUP_COMMANDS.items()}
