"""The browser app's pages: a shell per page that loads its bundle from web/static.

- ``/``: your notebooks and those shared with you; ``/notebooks/<id>``: one
  notebook; ``/tutor``: the tutor dashboard.
- ``/sandbox``: the frame rich outputs (HTML, JavaScript, SVG) are rendered
  in. It is embedded with ``sandbox="allow-scripts"`` and no
  ``allow-same-origin``, and its own response carries a CSP ``sandbox``
  directive, so even opened directly it has an opaque origin: what runs in it
  never reaches the app's origin, its cookies or its DOM.

Each shell carries the page's starting data as a JSON data block (not
script), escaped for HTML, so the CSP can forbid every inline script.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tornado import web

from web import STATIC as WEB_STATIC

from auth.identity import IdentityProvider
from auth.permissions import Action, Role
from auth.sharing import Sharing

from ..access import Authorizer
from ..notebooks import Notebooks
from .pages import PageHandler
from .room import presence_identity

APP_VERSION = "1"

# The app: scripts and styles from this origin only (CodeMirror and KaTeX add
# <style> elements, hence 'unsafe-inline' for styles, never for scripts);
# outputs may frame only the sandbox page; images may be data: (plots).
APP_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "frame-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)

# The output frame: anything may run, but in an opaque origin, and it may not
# load or send anything (no network: outputs cannot call home or read files).
SANDBOX_CSP = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval' blob:; "
    "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; media-src data: blob:; "
    "frame-ancestors 'self'"
)


def boot_json(data: dict[str, Any]) -> str:
    """JSON safe inside a <script type="application/json"> element."""
    text = json.dumps(data, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class AppPage(PageHandler):
    """A page of the app; subclasses name their bundle and starting data."""

    bundle = ""
    title = ""

    def initialize(  # type: ignore[override]
        self,
        identity: IdentityProvider,
        session_days: float,
        authorizer: Authorizer,
        sharing: Sharing,
        notebooks: Notebooks,
    ) -> None:
        super().initialize(identity, session_days)
        self.authorizer = authorizer
        self.sharing = sharing
        self.notebooks = notebooks

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Security-Policy", APP_CSP)

    async def page_data(self) -> dict[str, Any]:
        return {}

    async def get(self, *args: str, **kwargs: str) -> None:
        user = self.require_user()
        await self.notebooks.ensure_home(user)
        students = await asyncio.to_thread(self.sharing.students_of, user)
        data = {
            "user": {
                "name": user.name,
                "admin": user.admin,
                "tutor": bool(students),
                "identity": presence_identity(user, Role.OWNER),
            },
            **await self.page_data(),
        }
        self.render(
            "app.html",
            title=self.title,
            bundle=self.bundle,
            version=APP_VERSION,
            boot_json=boot_json(data),
        )


class ListPage(AppPage):
    bundle = "list"
    title = "Notebooks"


class TutorPage(AppPage):
    bundle = "tutor"
    title = "Tutor dashboard"


class NotebookPage(AppPage):
    bundle = "notebook"
    title = "Notebook"

    async def page_data(self) -> dict[str, Any]:
        assert self.user is not None
        notebook_id = self.path_kwargs["notebook_id"]
        granted = await self.authorizer.require(self.user, Action.VIEW, notebook_id=notebook_id)
        self.title = granted.path.rsplit("/", 1)[-1]
        return {"notebook": {"id": notebook_id, "path": granted.path, "role": granted.role.label}}


class SandboxPage(web.RequestHandler):
    """The output frame; the same for everyone. Its script is inlined: the frame
    loads nothing from the network (its CSP forbids it)."""

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", SANDBOX_CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")

    def get(self) -> None:
        script = (WEB_STATIC / "sandbox.js").read_text(encoding="utf-8")
        self.render("sandbox.html", script=script.replace("</script", "<\\/script"))
