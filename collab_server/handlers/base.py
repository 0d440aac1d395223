"""What every HTTP handler shares: authentication and the one place errors are written."""

from __future__ import annotations

import json
import logging
from types import TracebackType
from typing import Any, cast
from urllib.parse import quote

from tornado import web

from auth.identity import Credentials, IdentityProvider, User

from ..errors import http_status
from ..logs import log_http_error

log = logging.getLogger(__name__)

ExcInfo = tuple[type[BaseException], BaseException, TracebackType]


SESSION_COOKIE = "collab-session"


def credentials(
    handler: web.RequestHandler, allow_query_token: bool = False, session_days: float = 14
) -> Credentials:
    """What the request presents: a token header, a ``?token=`` (WebSockets only), a session."""
    request = handler.request
    token = handler.get_query_argument("token", "") if allow_query_token else ""
    session = handler.get_signed_cookie(SESSION_COOKIE, max_age_days=session_days)
    return Credentials(
        headers=request.headers,
        query_token=token or None,
        session=session.decode() if session else None,
    )


def check_xsrf_unless_token(handler: web.RequestHandler) -> None:
    """Requests authenticated by a token header carry no ambient credentials: no XSRF check.

    Anything else that changes state (cookie sessions, the login form) must
    carry the ``_xsrf`` value, as a form field or an ``X-XSRFToken`` header.
    """
    if "Authorization" in handler.request.headers:
        return
    web.RequestHandler.check_xsrf_cookie(handler)


class APIHandler(web.RequestHandler):
    """A JSON API handler; every request must be authenticated."""

    identity: IdentityProvider
    user: User

    def initialize(self, identity: IdentityProvider) -> None:
        """Subclasses declare the services they need as more parameters, and call this."""
        self.identity = identity

    async def prepare(self) -> None:
        user = await self.identity.identify(credentials(self))
        if user is None:
            raise web.HTTPError(401, "authentication required")
        self.user = user

    def check_xsrf_cookie(self) -> None:
        # Without a session cookie there is nothing to forge: let prepare() answer 401.
        if self.get_cookie(SESSION_COOKIE) is None:
            return
        check_xsrf_unless_token(self)

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(value))

    def json_body(self) -> dict[str, Any]:
        try:
            body = json.loads(self.request.body or b"{}")
        except (ValueError, RecursionError) as e:
            raise web.HTTPError(400, f"request body is not valid JSON: {str(e)[:200]}") from e
        if not isinstance(body, dict):
            raise web.HTTPError(400, "request body must be a JSON object")
        return cast(dict[str, Any], body)

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc_info: ExcInfo | None = kwargs.get("exc_info")
        if exc_info is not None:
            mapped = http_status(exc_info[1])
            if mapped is not None:
                status_code = mapped
        super().send_error(status_code, **kwargs)

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if value is not None and http_status(value) is not None:
            log.info("%s %s: %s", self.request.method, self.request.path, value)
            return
        if isinstance(value, web.HTTPError):
            log_http_error(self, value)
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """The one place error text reaches users: ``{"status", "error", "message"}``."""
        exc_info: ExcInfo | None = kwargs.get("exc_info")
        message = self._reason
        if exc_info is not None:
            error = exc_info[1]
            if isinstance(error, web.HTTPError):
                message = error.log_message % error.args if error.log_message else message
            elif http_status(error) is not None:
                message = str(error)
            else:
                message = "internal server error"
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'token realm="collab-server"')
        self.finish(json.dumps({"status": status_code, "error": self._reason, "message": message}))


def attachment(name: str) -> str:
    """A Content-Disposition value naming ``name``: a plain-ASCII fallback and the UTF-8 name."""
    plain = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"
