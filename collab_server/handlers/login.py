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
    LoginRefused,
    LoginThrottled,
    PasswordAttempt,
    PasswordAuthenticator,
)
from auth.identity import IdentityProvider, User
from auth.oauth import OAuthCallback, OAuthenticator
from auth.sessions import Sessions
from auth.throttle import retry_after_header
from auth.users import LoginConflict, Users

from ..notebooks import Notebooks
from ..redirects import safe_next
from .base import SESSION_COOKIE
from .pages import PageHandler

log = logging.getLogger(__name__)

OAUTH_STATE_COOKIE = "collab-oauth-state"
OAUTH_STATE_MINUTES = 10
# Longest username and password the form passes on; login methods check again.
MAX_FIELD = 8192


class LoginFlow(PageHandler):
    """What every login route shares: turn a logged-in user into a session cookie."""

    def initialize(  # type: ignore[override]
        self,
        identity: IdentityProvider,
        session_days: float,
        users: Users,
        sessions: Sessions,
        notebooks: Notebooks,
        authenticators: list[Authenticator[Any]],
        authenticator: OAuthenticator | None = None,
    ) -> None:
        super().initialize(identity, session_days)
        self.users = users
        self.sessions = sessions
        self.notebooks = notebooks
        self.authenticators = authenticators
        self._oauth = authenticator

    async def start_session(self, user: User, next_url: str) -> None:
        """Start a session for ``user``, set its cookie, go to ``next_url``."""
        await self.notebooks.logged_in(user)
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
            path="/",
        )
        log.info("%s logged in (%s) from %s", user.name, user.provider, self.request.remote_ip)
        self.redirect(safe_next(next_url))

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
            user = await password[0].log_in(attempt, self.users)
            await self.start_session(user, next_url)
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

    @property
    def authenticator(self) -> OAuthenticator:
        assert self._oauth is not None, "OAuth routes are mounted with their login method"
        return self._oauth

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
            user = await self.authenticator.log_in(callback, self.users)
            await self.start_session(user, str(pending.get("next", "/")))
        except (LoginRefused, LoginConflict) as e:
            status = e.status if isinstance(e, LoginRefused) else 403
            self.render_login(str(e), status)
