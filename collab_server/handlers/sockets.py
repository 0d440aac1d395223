"""What every WebSocket of the app checks before the upgrade, and how it refuses.

Who it is, the Origin rule (tokens are not ambient credentials, so any page
may use one; a session cookie only from this server's own origin or an
allow-listed one), the permission, Tornado's handshake checks answered as
JSON, and the identity check repeated while open: written once here for the
room and kernel sockets.
"""

from __future__ import annotations

import logging
from typing import Any

from tornado import web, websocket

from auth.identity import Credentials, IdentityProvider, User
from auth.permissions import Action

from ..access import Authorizer, Granted
from ..errors import WS_UNAUTHORIZED, http_status
from .base import credentials

log = logging.getLogger(__name__)


def request_origin(handler: web.RequestHandler) -> str:
    """This server's origin as the client addressed it (scheme, host and port)."""
    return f"{handler.request.protocol}://{handler.request.host}".lower()


class GuardedWebSocket(websocket.WebSocketHandler):
    """A WebSocket whose ``get()`` calls :meth:`authenticate`, :meth:`authorized` and
    :meth:`handshake_problem` before the upgrade; its ``initialize`` sets the services."""

    identity: IdentityProvider
    authorizer: Authorizer
    session_days: float
    allowed_origins: frozenset[str] = frozenset()
    user: User
    _credentials: Credentials | None = None

    async def authenticate(self) -> User | None:
        """Who this is, from a token (header or ``?token=``) or a session from an allowed
        Origin; None once refused (401, 403)."""
        presented = credentials(self, allow_query_token=True, session_days=self.session_days)
        user = await self.identity.identify(presented)
        if user is None:
            self._refuse(401, "authentication required")
            return None
        self.user, self._credentials = user, presented
        if not presented.presents_token and not self._origin_allowed(
            self.request.headers.get("Origin")
        ):
            self._refuse(403, "cross-origin WebSocket refused")
            return None
        return user

    async def authorized(self, action: Action, notebook_id: str) -> Granted | None:
        """The authorizer's answer for ``action``; None once refused with its status."""
        try:
            return await self.authorizer.require(self.user, action, notebook_id=notebook_id)
        except Exception as e:
            status = http_status(e)
            if status is None:
                raise
            self._refuse(status, str(e))
            return None

    def handshake_problem(self) -> tuple[int, str] | None:
        """Tornado's own handshake checks, answered in the API's JSON shape."""
        headers = self.request.headers
        if headers.get("Upgrade", "").lower() != "websocket":
            return 400, 'Can "Upgrade" only to "WebSocket".'
        connection = [v.strip().lower() for v in headers.get("Connection", "").split(",")]
        if "upgrade" not in connection:
            return 400, '"Connection" must be "Upgrade".'
        if headers.get("Sec-WebSocket-Version") not in ("7", "8", "13"):
            self.set_header("Sec-WebSocket-Version", "7, 8, 13")
            return 426, "unsupported WebSocket version (use 13)"
        if not headers.get("Sec-WebSocket-Key"):
            return 400, "Missing/Invalid WebSocket headers"
        return None

    async def still_the_same_user(self) -> User | None:
        """For an open socket: its credentials' user again, or None once closed 4401."""
        assert self._credentials is not None
        user = await self.identity.identify(self._credentials)
        if user is None or user.id != self.user.id:
            self.close(WS_UNAUTHORIZED, "logged out or token revoked")
            return None
        return user

    def _origin_allowed(self, origin: str | None) -> bool:
        """Exact match against the allowlist and this server's own origin; no prefixes."""
        if not origin:
            return False
        origin = origin.lower()
        return origin == request_origin(self) or origin in self.allowed_origins

    def check_origin(self, origin: str) -> bool:
        assert self._credentials is not None
        return self._credentials.presents_token or self._origin_allowed(origin)

    def _refuse(self, status: int, message: str) -> None:
        log.info("refused WebSocket %s: %d %s", self.request.path, status, message)
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        if status == 401:
            self.set_header("WWW-Authenticate", 'token realm="collab-server"')
        self.finish({"status": status, "error": self._reason, "message": message})

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors before the upgrade (a plain GET, another method) in the API's JSON shape."""
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        message = self._reason
        exc_info = kwargs.get("exc_info")
        if exc_info is not None and isinstance(exc_info[1], web.HTTPError) and exc_info[1].log_message:
            message = exc_info[1].log_message % exc_info[1].args
        self.finish({"status": status_code, "error": self._reason, "message": message})
