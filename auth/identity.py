"""Who is making a request: the authenticated user, separate from what they may do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class User:
    """An authenticated user. ``name`` is unique and is what logs and rooms record.

    ``provider`` is how the account was created: "pam" (a unix account),
    "oauth", or "local" (by an admin or the CLI).
    """

    id: int
    name: str
    admin: bool = False
    provider: str = "local"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presents, independent of the web framework.

    ``headers`` are the request headers; ``query_token`` is a ``?token=``
    parameter, accepted on WebSocket upgrades only (browsers cannot set headers
    there); ``session`` is the session id from the signed login cookie.
    """

    headers: Mapping[str, str]
    query_token: str | None = None
    session: str | None = None

    @property
    def presents_token(self) -> bool:
        """A token was presented: then only the token counts, never the cookie."""
        return bool(self.query_token) or "Authorization" in self.headers


class IdentityProvider(Protocol):
    """Resolves a request's credentials to a user, or None if it presents none that are valid.

    Tokens and login sessions each implement this.
    """

    async def identify(self, credentials: Credentials) -> User | None: ...
