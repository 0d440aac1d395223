"""Login methods, chosen by configuration, all going through one template.

As in JupyterHub, ``Authenticator.get_authenticated_user`` is the template
method subclasses do not override: it calls ``authenticate`` (the subclass's
part: check a password, finish an OAuth flow), then normalizes the name, then
applies the block list, the allow list and ``check_allowed``, then decides
admin status. A login either yields an :class:`AuthenticatedUser` or raises
:class:`LoginRefused` with a message fit to show the person logging in.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Generic, TypeVar

from traitlets import Set, Unicode
from traitlets.config import LoggingConfigurable

from .identity import User
from .users import NAME_PATTERN, LoginConflict, Users


@dataclass(frozen=True, slots=True)
class AuthenticatedUser:
    """Who a login method says someone is.

    ``provider`` is "pam" or "oauth"; for OAuth, ``issuer`` and ``subject``
    are the stable key of the identity and ``name`` only a preferred name.
    From ``authenticate``, ``admin`` is True when the method itself grants
    admin (an admin group); from ``get_authenticated_user`` it also counts
    ``admin_users``, and ``method_admin`` keeps the method's own grant.
    """

    name: str
    provider: str
    admin: bool = False
    issuer: str = ""
    subject: str = ""
    display_name: str = ""
    method_admin: bool = False


class LoginRefused(PermissionError):
    """A login that failed; ``str()`` is what the person sees, ``status`` the HTTP status."""

    status = 403


class LoginThrottled(LoginRefused):
    """Too many attempts: refused before the login method was even asked."""

    status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LoginUnavailable(LoginRefused):
    """The login method cannot take more attempts right now (busy or unreachable)."""

    status = 503


AttemptT = TypeVar("AttemptT")


class Authenticator(LoggingConfigurable, Generic[AttemptT]):
    """Base of every login method.

    Subclasses implement ``authenticate``; they may extend
    ``normalize_username`` and ``check_allowed``. ``kind`` tells the web app
    which login routes to mount: "password" (a login form posting a username
    and a password) or "oauth" (a redirect to a provider and a callback).
    """

    kind: ClassVar[str] = ""
    login_service = Unicode(
        "", config=True, help="Name shown on the login page, e.g. 'GitHub' or 'your unix account'."
    )
    allowed_users = Set(
        Unicode(),
        config=True,
        help="If not empty, only these users may log in (after normalization). "
        "Login methods may add their own conditions (allowed groups, domains, orgs).",
    )
    blocked_users = Set(Unicode(), config=True, help="Users who may never log in.")
    admin_users = Set(
        Unicode(), config=True, help="Users who are admins (manage users, groups, all notebooks)."
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.failed_logins: collections.Counter[str] = collections.Counter()
        """Logins :meth:`log_in` refused since start, by reason (see :func:`failure_reason`)."""

    async def get_authenticated_user(self, attempt: AttemptT) -> AuthenticatedUser:
        """Authenticate, normalize, check the lists: the one path every login takes.

        Raises LoginRefused (or a subclass) with a message for the person.
        """
        user = await self.authenticate(attempt)
        if user is None:
            raise LoginRefused("Invalid username or password.")
        name = self.normalize_username(user.name)
        if not NAME_PATTERN.match(name):
            self.log.warning("login refused: unusable username %r", name[:80])
            raise LoginRefused("This account's name cannot be used here.")
        admin = self.check_account(name, user.admin)
        if not await self.check_allowed(name, user):
            self.log.warning("login refused: %s is not allowed", name)
            raise LoginRefused("This account may not log in here.")
        return replace(user, name=name, admin=admin, method_admin=user.admin)

    async def log_in(self, attempt: AttemptT, users: Users) -> User:
        """The whole login: authenticate, then find or create the account it maps to.

        An OAuth identity may map to an account with another name ("alice-2"
        when "alice" is taken): the lists then apply again to that account, so
        nobody gets alice's rights by claiming her name. Raises LoginRefused,
        or LoginConflict when the account cannot be used.
        """
        try:
            authenticated = await self.get_authenticated_user(attempt)
            return await asyncio.to_thread(self._account, authenticated, users)
        except (LoginRefused, LoginConflict) as e:
            self.failed_logins[failure_reason(e)] += 1
            raise

    def _account(self, authenticated: AuthenticatedUser, users: Users) -> User:
        if authenticated.provider != "oauth":
            return users.login(authenticated.name, authenticated.provider, authenticated.admin)
        account = users.oauth_account_name(
            authenticated.issuer, authenticated.subject, authenticated.name
        )
        admin = authenticated.admin
        if account != authenticated.name:
            admin = self.check_account(account, authenticated.method_admin)
        return users.login_oauth(
            authenticated.issuer, authenticated.subject, authenticated.name, admin, account
        )

    def check_account(self, name: str, method_admin: bool) -> bool:
        """Apply the block, allow and admin lists to the account ``name``; returns admin.

        Called by the template, and again by ``log_in`` when the account gets
        another name than the one claimed (an OAuth name already taken): the
        lists always apply to the account actually logged into.
        """
        if name in self.blocked_users:
            self.log.warning("login refused: %s is blocked", name)
            raise LoginRefused("This account may not log in.")
        allowed = not self.allowed_users or name in self.allowed_users or name in self.admin_users
        if not allowed:
            self.log.warning("login refused: %s is not allowed", name)
            raise LoginRefused("This account may not log in here.")
        return method_admin or name in self.admin_users

    async def authenticate(self, attempt: AttemptT) -> AuthenticatedUser | None:
        """Check the attempt; None if the credentials are wrong.

        May raise LoginRefused for a more specific refusal (throttled, busy).
        """
        raise NotImplementedError

    def normalize_username(self, name: str) -> str:
        return name.strip().lower()

    async def check_allowed(self, name: str, user: AuthenticatedUser) -> bool:
        """The method's own conditions (groups, domains); True by default."""
        return True

    async def start(self) -> None:
        """Called once when the server starts (check the environment, fetch discovery)."""

    async def stop(self) -> None:
        """Called once when the server stops."""


def failure_reason(error: LoginRefused | LoginConflict) -> str:
    """Why a login failed, in a word: "throttled", "unavailable" or "refused"."""
    if isinstance(error, LoginThrottled):
        return "throttled"
    if isinstance(error, LoginUnavailable):
        return "unavailable"
    return "refused"


@dataclass(frozen=True, slots=True)
class PasswordAttempt:
    """A username and password typed into the login form, and where it came from."""

    username: str
    password: str
    address: str


class PasswordAuthenticator(Authenticator[PasswordAttempt]):
    """A login method checking a username and password (PAM)."""

    kind = "password"
