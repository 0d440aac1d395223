"""Logging in and out: the login form, OAuth redirects, sessions in signed cookies.

Routes mounted per configured login method (see ``routes.login_routes``):
``/login`` (the page; the form posts here for password methods),
``/logout``, and ``/oauth/<name>/login`` + ``/oauth/<name>/callback`` for
each OAuth method.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from tornado import web

from auth.authenticator import (
    Authenticator,
    AuthenticatedUser,
    LoginRefused,
    LoginThrottled,
    PasswordAttempt,
    PasswordAuthenticator,
)
from auth.oauth import OAuthCallback, OAuthenticator
from auth.sessions import Sessions
from auth.throttle import retry_after_header
from auth.users import LoginConflict, Users
from kernels.pool import KernelOwner, KernelPool

from ..access import Access
from ..redirects import safe_next
from .base import SESSION_COOKIE
from .pages import PageHandler

log = logging.getLogger(__name__)

OAUTH_STATE_COOKIE = "collab-oauth-state"
OAUTH_STATE_MINUTES = 10
# Longest username and password the form passes on; login methods check again.
MAX_FIELD = 8192


class LoginFlow(PageHandler):
    """What every login route shares: turn an authenticated person into a session."""

    users: Users
    sessions: Sessions
    access: Access
    kernel_pool: KernelPool
    authenticators: list[Authenticator[Any]]

    async def finish_login(self, authenticated: AuthenticatedUser, next_url: str) -> None:
        """Create or find the user, start a session, set its cookie, go to ``next_url``."""
        if authenticated.provider == "oauth":
            # The lists apply to the account actually logged into, which may be
            # "alice-2" when "alice" is taken: never alice's rights by claiming her name.
            account = await asyncio.to_thread(
                self.users.oauth_account_name,
                authenticated.issuer,
                authenticated.subject,
                authenticated.name,
            )
            admin = authenticated.admin
            if account != authenticated.name:
                admin = self.authenticator_of(authenticated).check_account(
                    account, authenticated.method_admin
                )
            user = await asyncio.to_thread(
                self.users.login_oauth,
                authenticated.issuer,
                authenticated.subject,
                authenticated.name,
                admin,
                account,
            )
        else:
            user = await asyncio.to_thread(
                self.users.login, authenticated.name, authenticated.provider, authenticated.admin
            )
        await self.access.ensure_home(user)
        # Their first notebook should find a kernel ready.
        self.kernel_pool.prewarm(KernelOwner(user.name, unix=user.provider == "pam"))
        secret = await asyncio.to_thread(
            self.sessions.create,
            user,
            self.request.remote_ip or "",
            self.request.headers.get("User-Agent", ""),
        )
        self.set_signed_cookie(
            SESSION_COOKIE,
            secret,
            expires_days=self.session_days,
            httponly=True,
            samesite="Lax",
            secure=self.request.protocol == "https",
            path="/",
        )
        log.info("%s logged in (%s) from %s", user.name, authenticated.provider, self.request.remote_ip)
        self.redirect(safe_next(next_url))

    def authenticator_of(self, authenticated: AuthenticatedUser) -> Authenticator[Any]:
        raise NotImplementedError

    def render_login(self, message: str = "", status: int = 200, username: str = "") -> None:
        self.set_status(status)
        password = [a for a in self.authenticators if isinstance(a, PasswordAuthenticator)]
        self.render(
            "login.html",
            message=message,
            next_url=safe_next(self.get_argument("next", "/")),
            username=username[:256],
            password_login=password[0] if password else None,
            oauth_logins=[a for a in self.authenticators if isinstance(a, OAuthenticator)],
        )


class LoginHandler(LoginFlow):
    """GET /login: the login page. POST /login: the password form."""

    def get(self) -> None:
        if self.user is not None:
            self.redirect(safe_next(self.get_argument("next", "/")))
            return
        self.render_login()

    async def post(self) -> None:
        password = [a for a in self.authenticators if isinstance(a, PasswordAuthenticator)]
        if not password:
            raise web.HTTPError(404, "this server has no password login")
        username = self.get_body_argument("username", "", strip=False)
        secret = self.get_body_argument("password", "", strip=False)
        next_url = self.get_body_argument("next", "/")
        if len(username) > MAX_FIELD or len(secret) > MAX_FIELD:
            self.render_login("Invalid username or password.", 403)
            return
        attempt = PasswordAttempt(username, secret, self.request.remote_ip or "")
        try:
            authenticated = await password[0].get_authenticated_user(attempt)
            await self.finish_login(authenticated, next_url)
        except LoginThrottled as e:
            self.set_header("Retry-After", retry_after_header(e.retry_after))
            self.render_login(str(e), e.status, username)
        except (LoginRefused, LoginConflict) as e:
            status = e.status if isinstance(e, LoginRefused) else 403
            self.render_login(str(e), status, username)


class LogoutHandler(LoginFlow):
    """GET /logout: a confirmation page. POST /logout: end this session (or all of them)."""

    def get(self) -> None:
        self.render("logout.html")

    async def post(self) -> None:
        cookie = self.get_signed_cookie(SESSION_COOKIE, max_age_days=self.session_days)
        if self.get_body_argument("everywhere", "") and self.user is not None:
            await asyncio.to_thread(self.sessions.end_all, self.user.id)
        elif cookie:
            await asyncio.to_thread(self.sessions.end, cookie.decode())
        self.clear_cookie(SESSION_COOKIE, path="/")
        self.user = None
        self.redirect("/login")


class OAuthLoginHandler(LoginFlow):
    """GET /oauth/<name>/login?next=: send the browser to the provider."""

    authenticator: OAuthenticator

    def authenticator_of(self, authenticated: AuthenticatedUser) -> Authenticator[Any]:
        return self.authenticator

    async def get(self) -> None:
        try:
            url, state = await self.authenticator.begin(self.callback_url())
        except LoginRefused as e:  # the provider is unreachable
            self.render_login(str(e), e.status)
            return
        value = json.dumps({"state": state, "next": safe_next(self.get_argument("next", "/"))})
        self.set_signed_cookie(
            OAUTH_STATE_COOKIE,
            value,
            expires_days=OAUTH_STATE_MINUTES / (24 * 60),
            httponly=True,
            samesite="Lax",
            secure=self.request.protocol == "https",
            path=f"/oauth/{self.authenticator.name}/",
        )
        self.redirect(url)

    def callback_url(self) -> str:
        configured: str = self.authenticator.callback_url
        if configured:
            return configured
        return f"{self.request.protocol}://{self.request.host}/oauth/{self.authenticator.name}/callback"


class OAuthCallbackHandler(OAuthLoginHandler):
    """GET /oauth/<name>/callback: the provider sends the browser back here."""

    async def get(self) -> None:
        cookie_path = f"/oauth/{self.authenticator.name}/"
        raw = self.get_signed_cookie(
            OAUTH_STATE_COOKIE, max_age_days=OAUTH_STATE_MINUTES / (24 * 60)
        )
        self.clear_cookie(OAUTH_STATE_COOKIE, path=cookie_path)
        state = self.get_argument("state", "")
        try:
            pending = json.loads(raw) if raw else {}
        except ValueError:
            pending = {}
        error = self.get_argument("error", "")
        if not error and (not state or pending.get("state") != state):
            # Not started in this browser: a forged or replayed callback.
            self.render_login("This login did not start here or has expired; try again.", 403)
            return
        callback = OAuthCallback(
            code=self.get_argument("code", ""),
            state=state,
            error=error,
            redirect_uri=self.callback_url(),
        )
        try:
            authenticated = await self.authenticator.get_authenticated_user(callback)
            await self.finish_login(authenticated, str(pending.get("next", "/")))
        except (LoginRefused, LoginConflict) as e:
            status = e.status if isinstance(e, LoginRefused) else 403
            self.render_login(str(e), status)
