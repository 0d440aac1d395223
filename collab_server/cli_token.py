"""``collab-server token create|list|revoke``: API tokens for scripts and clients."""

from __future__ import annotations

import time

from traitlets import Unicode
from traitlets.config import Application

from auth.tokens import Tokens
from auth.users import UnknownUser

from .admin_db import CREATE_FLAG, AdminDatabase, CommandGroup, open_main_database
from .app import DB_ALIASES, ServerConfig
from .errors import StartupError


def _tokens(app: Application) -> Tokens:
    return Tokens(open_main_database(app))


class TokenCreateApp(Application):
    """collab-server token create USERNAME [--note=TEXT]: print a new token for USERNAME."""

    name = "collab-server token create"
    description = __doc__ or ""
    aliases = {"note": "TokenCreateApp.note", **DB_ALIASES}
    flags = CREATE_FLAG
    classes = [ServerConfig, AdminDatabase]
    note = Unicode("", config=True, help="What the token is for.")

    def start(self) -> None:
        if len(self.extra_args) != 1:
            self.exit("usage: collab-server token create USERNAME")
        username = self.extra_args[0]
        tokens = _tokens(self)
        try:
            tokens.users.get(username)  # a typo must not make a new account
        except UnknownUser:
            raise StartupError(
                f"no user named {username!r}: add them first with "
                f"`collab-server user add {username}`"
            ) from None
        print(tokens.create(username, note=self.note))


class TokenListApp(Application):
    """collab-server token list [USERNAME]: list tokens (never the tokens themselves)."""

    name = "collab-server token list"
    description = __doc__ or ""
    aliases = DB_ALIASES
    flags = CREATE_FLAG
    classes = [ServerConfig, AdminDatabase]

    def start(self) -> None:
        username = self.extra_args[0] if self.extra_args else None
        print(f"{'id':>4}  {'user':<20} {'prefix':<8} {'created':<20} note")
        for t in _tokens(self).list_tokens(username):
            created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t.created_at))
            print(f"{t.id:>4}  {t.username:<20} {t.prefix + '…':<8} {created:<20} {t.note}")


class TokenRevokeApp(Application):
    """collab-server token revoke ID: revoke a token by the id that `token list` shows."""

    name = "collab-server token revoke"
    description = __doc__ or ""
    aliases = DB_ALIASES
    flags = CREATE_FLAG
    classes = [ServerConfig, AdminDatabase]

    def start(self) -> None:
        if len(self.extra_args) != 1 or not self.extra_args[0].isdigit():
            self.exit("usage: collab-server token revoke ID")
        if not _tokens(self).revoke(int(self.extra_args[0])):
            self.exit(f"no token with id {self.extra_args[0]}")
        print(f"revoked token {self.extra_args[0]}")


class TokenApp(CommandGroup):
    """Manage API tokens."""

    name = "collab-server token"
    description = __doc__ or ""
    subcommands = {
        "create": (TokenCreateApp, TokenCreateApp.__doc__ or ""),
        "list": (TokenListApp, TokenListApp.__doc__ or ""),
        "revoke": (TokenRevokeApp, TokenRevokeApp.__doc__ or ""),
    }
