"""What every WebSocket of the app checks before the upgrade, and how it refuses.

The Origin rule (tokens are not ambient credentials, so any page may use one;
a session cookie only from this server's own origin or an allow-listed one)
and the JSON refusals are written once here for the room and kernel sockets.
"""

from __future__ import annotations

import logging
from typing import Any

from tornado import web, websocket

from auth.identity import Credentials

log = logging.getLogger(__name__)


def request_origin(handler: web.RequestHandler) -> str:
    """This server's origin as the client addressed it (scheme, host and port)."""
    return f"{handler.request.protocol}://{handler.request.host}".lower()


class GuardedWebSocket(websocket.WebSocketHandler):
    """A WebSocket whose subclass sets ``_credentials`` in ``get()`` before the upgrade."""

    allowed_origins: frozenset[str] = frozenset()
    _credentials: Credentials | None = None

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
