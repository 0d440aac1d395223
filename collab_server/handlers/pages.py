"""HTML pages: the base every page shares (session user, CSP, error page)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from tornado import web
from tornado.escape import url_escape

from auth.identity import IdentityProvider, User

from ..errors import http_status
from ..logs import log_http_error
from .base import ExcInfo, check_xsrf_unless_token, credentials

# Pages run no inline script, are never framed, and post forms only to this site.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


class PageHandler(web.RequestHandler):
    """A page; ``self.user`` is the logged-in user or None."""

    identity: IdentityProvider
    session_days: float
    user: User | None = None

    def initialize(self, identity: IdentityProvider, session_days: float) -> None:
        """Subclasses declare the services they need as more parameters, and call this."""
        self.identity = identity
        self.session_days = session_days

    async def prepare(self) -> None:
        self.xsrf_token  # noqa: B018 -- every page sets the _xsrf cookie its forms echo
        self.user = await self.identity.identify(
            credentials(self, session_days=self.session_days)
        )

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", PAGE_CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("Cache-Control", "no-store")

    def check_xsrf_cookie(self) -> None:
        check_xsrf_unless_token(self)

    def set_cookie(self, name: str, value: str | bytes, *args: Any, **kwargs: Any) -> None:
        """Every cookie is ``Secure`` when the client uses https (here or at a trusted proxy).

        That covers the session, the OAuth state and the ``_xsrf`` cookie.
        """
        if self.request.protocol == "https":
            kwargs["secure"] = True
        super().set_cookie(name, value, *args, **kwargs)

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        namespace["user"] = self.user
        return namespace

    def require_user(self) -> User:
        """The logged-in user, or a redirect to the login page that comes back here."""
        if self.user is None:
            raise web.HTTPError(401, "log in to see this page")
        return self.user

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc_info: ExcInfo | None = kwargs.get("exc_info")
        if exc_info is not None:
            mapped = http_status(exc_info[1])
            if mapped is not None:
                status_code = mapped
        if status_code == 401 and self.request.method == "GET" and not self._finished:
            self.clear()
            self.redirect("/login?next=" + url_escape(self.request.uri or "/"))
            return
        super().send_error(status_code, **kwargs)

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(value, web.HTTPError):
            log_http_error(self, value)  # an anonymous visit's 401 is routine, not a warning
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """The error page: what went wrong in words, never a traceback."""
        exc_info: ExcInfo | None = kwargs.get("exc_info")
        message = "Something went wrong on the server; it has been logged."
        if exc_info is not None:
            error = exc_info[1]
            if isinstance(error, web.HTTPError) and error.log_message:
                message = error.log_message % error.args
            elif http_status(error) is not None:
                message = str(error)
        elif status_code < 500:
            message = self._reason
        self.render(
            "error.html",
            status_code=status_code,
            reason=self._reason,
            message=message,
            next_url=self.request.uri or "/",
        )


class NotFoundHandler(PageHandler):
    """Any URL no route matches: the error page, or JSON under /api/."""

    def prepare(self) -> None:  # type: ignore[override]
        raise web.HTTPError(404, "There is no page at this address.")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if self.request.path.startswith("/api/"):
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish({"status": status_code, "error": self._reason, "message": "no such API"})
            return
        super().write_error(status_code, **kwargs)
