"""The one URL table: every route, with what its handler needs injected."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tornado import httputil, web

from auth.authenticator import Authenticator, PasswordAuthenticator
from auth.oauth import OAuthenticator
from web import STATIC as WEB_STATIC

from .handlers import admin, app, kernels, login, notebooks, ops, pages, presence, room, sharing
from .handlers import files as file_downloads
from .handlers import trash
from .handlers.jupyter import contents as jupyter_contents
from .handlers.jupyter import kernels as jupyter_kernels
from .handlers.jupyter import server as jupyter_server
from .handlers.jupyter import sessions as jupyter_sessions
from .logs import log_request
from .metrics import server_registry
from .proxies import TrustedProxies
from .services import Services

ROOM_ID = r"(?P<room_id>[0-9a-f]{32})"
NOTEBOOK_ID = r"(?P<notebook_id>[0-9a-f]{32})"
PATH = r"(?P<path>(?:/.*)?)"
NAME = r"(?P<name>[^/]+)"
KERNEL_ID = r"(?P<kernel_id>[0-9a-f-]{36})"
HERE = Path(__file__).parent


def login_routes(authenticators: list[Authenticator[Any]], pages: dict[str, Any]) -> list[Any]:
    """Each configured login method mounts its own routes, by its kind."""
    flow = {
        **pages,
        "authenticators": authenticators,
    }
    routes: list[Any] = [
        (r"/login", login.LoginHandler, flow),
        (r"/logout", login.LogoutHandler, flow),
    ]
    names: set[str] = set()
    for authenticator in authenticators:
        if isinstance(authenticator, OAuthenticator):
            name = authenticator.name
            if name in names:
                raise ValueError(f"two OAuth login methods are both named {name!r}")
            names.add(name)
            oauth = {**flow, "authenticator": authenticator}
            routes += [
                (rf"/oauth/{name}/login", login.OAuthLoginHandler, oauth),
                (rf"/oauth/{name}/callback", login.OAuthCallbackHandler, oauth),
            ]
        elif not isinstance(authenticator, PasswordAuthenticator):
            raise TypeError(f"{type(authenticator).__name__} is not a known kind of login")
    return routes


class ProxiedApplication(web.Application):
    """Tornado's Application, giving each request its real client when proxies forward it.

    Before a request is routed (so for every handler, WebSockets included),
    its ``remote_ip`` and ``protocol`` become the client's address and scheme
    as ``TrustedProxies.client`` reads them. Unlike Tornado's ``xheaders``,
    the headers count only when the peer is a trusted proxy.
    """

    def __init__(self, routes: list[Any], trusted_proxies: TrustedProxies, **settings: Any) -> None:
        super().__init__(routes, **settings)
        self.trusted_proxies = trusted_proxies

    def find_handler(self, request: httputil.HTTPServerRequest, **kwargs: Any) -> Any:
        if self.trusted_proxies:
            headers = request.headers
            client = self.trusted_proxies.client(
                request.remote_ip or "",
                request.protocol,
                forwarded_for=headers.get("X-Forwarded-For"),
                forwarded_proto=headers.get("X-Forwarded-Proto"),
                real_ip=headers.get("X-Real-IP"),
            )
            request.remote_ip, request.protocol = client.address, client.scheme
        return super().find_handler(request, **kwargs)


def make_app(
    services: Services,
    max_send_buffer: int,
    allowed_origins: frozenset[str] = frozenset(),
    trusted_proxies: Iterable[str] = (),
    **tornado_settings: Any,
) -> web.Application:
    """The Tornado application for ``services``; ``tornado_settings`` are Tornado's own.

    ``trusted_proxies`` (addresses, CIDR networks) are the reverse proxies whose
    X-Forwarded-For/-Proto headers are believed; raises ValueError on a bad entry.
    """
    session_days = services.settings.session_lifetime / (24 * 3600)
    identity = services.identity
    authorizer = services.authorizer
    # What each family of handlers takes in its initialize(), by keyword.
    api = {"identity": identity}
    page = {"identity": identity, "session_days": session_days}
    logins = {
        **page,
        "users": services.users,
        "sessions": services.sessions,
        "notebooks": services.notebooks,
    }
    app_page = {
        **page,
        "authorizer": authorizer,
        "sharing": services.sharing,
        "notebooks": services.notebooks,
    }
    link_page = {
        **page,
        "sharing": services.sharing,
        "contents": services.contents,
        "live": services.live,
    }
    files = {
        **api,
        "authorizer": authorizer,
        "contents": services.contents,
        "notebooks": services.notebooks,
        "checkpoints": services.settings.room.checkpoint_dir,
    }
    share = {
        **api,
        "authorizer": authorizer,
        "sharing": services.sharing,
        "live": services.live,
        "contents": services.contents,
    }
    manage = {**api, "authorizer": authorizer, "users": services.users, "live": services.live}
    running = {
        **api,
        "authorizer": authorizer,
        "kernels": services.kernels,
        "notebooks": services.notebooks,
        "contents": services.contents,
        "history": services.history,
    }
    people = {**api, "authorizer": authorizer, "classroom": services.classroom}
    jupyter_status = {
        **api,
        "kernels": services.kernels,
        "rooms": services.rooms,
        "started": time.time(),
    }
    closes: collections.Counter[int] = collections.Counter()  # WebSockets we closed, by code
    scrape = {
        **api,
        "authorizer": authorizer,
        "registry": server_registry(services, closes),
        "authenticate": services.settings.authenticate_metrics,
    }
    routes: list[Any] = [
        (r"/", app.ListPage, app_page),
        (rf"/notebooks/{NOTEBOOK_ID}", app.NotebookPage, app_page),
        (r"/tutor", app.TutorPage, app_page),
        (r"/sandbox", app.SandboxPage),
        (r"/assets/(.*)", web.StaticFileHandler, {"path": str(WEB_STATIC)}),
        (r"/share/(?P<code>[A-Za-z0-9_-]{16,64})", sharing.ShareLinkPage, link_page),
        *login_routes(services.authenticators, logins),
        (r"/metrics", ops.MetricsHandler, scrape),
        (r"/health", ops.HealthHandler, {"health": services.health}),
        (r"/api/user", notebooks.WhoAmIHandler, api),
        (rf"/api/contents{PATH}", notebooks.ContentsHandler, files),
        (rf"/api/files{PATH}", file_downloads.FileDownloadHandler, files),
        (rf"/api/upload{PATH}", notebooks.UploadHandler, files),
        (r"/api/trash", trash.TrashHandler, files),
        (r"/api/trash/(?P<trash_id>[0-9a-f]{32})/restore", trash.RestoreHandler, files),
        (r"/api/trash/(?P<trash_id>[0-9a-f]{32})", trash.TrashItemHandler, files),
        (rf"/api/notebooks/{ROOM_ID}", notebooks.NotebookHandler, files),
        (rf"/api/notebooks/{ROOM_ID}/checkpoints", notebooks.CheckpointsHandler, files),
        (
            rf"/api/notebooks/{ROOM_ID}/checkpoints/(?P<name>[0-9T.]+\.ipynb)",
            notebooks.CheckpointHandler,
            files,
        ),
        (rf"/api/notebooks/{NOTEBOOK_ID}/role", sharing.MyRoleHandler, share),
        (rf"/api/notebooks/{NOTEBOOK_ID}/shares", sharing.SharesHandler, share),
        (rf"/api/notebooks/{NOTEBOOK_ID}/shares/(?P<share_id>[0-9]{{1,18}})", sharing.ShareHandler, share),
        (rf"/api/notebooks/{NOTEBOOK_ID}/links", sharing.LinksHandler, share),
        (rf"/api/notebooks/{NOTEBOOK_ID}/links/(?P<link_id>[0-9]{{1,18}})", sharing.LinkHandler, share),
        (r"/api/shared", sharing.SharedWithMeHandler, share),
        (rf"/api/notebooks/{NOTEBOOK_ID}/execute", kernels.ExecuteHandler, running),
        (rf"/api/notebooks/{NOTEBOOK_ID}/kernel", kernels.KernelHandler, running),
        (
            rf"/api/notebooks/{NOTEBOOK_ID}/kernel/(?P<action>interrupt|restart|shutdown)",
            kernels.KernelActionHandler,
            running,
        ),
        (rf"/api/notebooks/{NOTEBOOK_ID}/input", kernels.InputHandler, running),
        (rf"/api/notebooks/{NOTEBOOK_ID}/complete", kernels.CompleteHandler, running),
        (r"/api/kernelspecs", kernels.KernelSpecsHandler, running),
        (rf"/api/notebooks/{NOTEBOOK_ID}/kernelspec", kernels.NotebookKernelSpecHandler, running),
        (rf"/api/notebooks/{NOTEBOOK_ID}/inspect", kernels.InspectHandler, running),
        (rf"/api/notebooks/{NOTEBOOK_ID}/history", kernels.NotebookHistoryHandler, running),
        (
            rf"/api/notebooks/{NOTEBOOK_ID}/history/export",
            kernels.HistoryExportHandler,
            running,
        ),
        (rf"/api/notebooks/{NOTEBOOK_ID}/history/rebuild", kernels.RebuildHandler, running),
        (r"/api/history", kernels.AllHistoryHandler, running),
        (r"/api/presence", presence.PresenceHandler, people),
        (rf"/api/notebooks/{NOTEBOOK_ID}/hand", presence.RaiseHandHandler, people),
        (
            rf"/api/notebooks/{NOTEBOOK_ID}/hand/(?P<username>[^/]+)",
            presence.LowerHandHandler,
            people,
        ),
        (r"/api/tutor/students", presence.StudentsHandler, people),
        (r"/api/users", admin.UsersHandler, manage),
        (rf"/api/users/{NAME}", admin.UserHandler, manage),
        (r"/api/groups", admin.GroupsHandler, manage),
        (rf"/api/groups/{NAME}", admin.GroupHandler, manage),
        (r"/api/groups/(?P<group>[^/]+)/members/(?P<name>[^/]+)", admin.GroupMemberHandler, manage),
        # Jupyter Server API: contents, sessions, kernelspecs, identity
        (r"/jupyter/api", jupyter_server.VersionHandler),
        (r"/jupyter/api/status", jupyter_server.StatusHandler, jupyter_status),
        (r"/jupyter/api/me", jupyter_server.MeHandler, api),
        (r"/jupyter/api/kernelspecs", jupyter_server.JupyterKernelSpecsHandler, running),
        (rf"/jupyter/api/contents{PATH}/checkpoints", jupyter_contents.CheckpointsHandler, files),
        (rf"/jupyter/api/contents{PATH}", jupyter_contents.ContentsHandler, files),
        (r"/jupyter/api/sessions", jupyter_sessions.SessionsHandler, running),
        (
            rf"/jupyter/api/sessions/{jupyter_sessions.SESSION_ID}",
            jupyter_sessions.SessionHandler,
            running,
        ),
        (
            rf"/api/rooms/{ROOM_ID}",
            room.RoomHandler,
            {
                "rooms": services.rooms,
                "identity": identity,
                "authorizer": authorizer,
                "live": services.live,
                "allowed_origins": frozenset(o.lower().rstrip("/") for o in allowed_origins),
                "max_send_buffer": max_send_buffer,
                "session_days": session_days,
                "closes": closes,
            },
        ),
        # Jupyter Server API: kernels
        (r"/jupyter/api/kernels", jupyter_kernels.JupyterKernelsHandler, running),
        (rf"/jupyter/api/kernels/{KERNEL_ID}", jupyter_kernels.JupyterKernelHandler, running),
        (
            rf"/jupyter/api/kernels/{KERNEL_ID}/(?P<action>interrupt|restart)",
            jupyter_kernels.JupyterKernelActionHandler,
            running,
        ),
        (
            rf"/jupyter/api/kernels/{KERNEL_ID}/channels",
            jupyter_kernels.KernelChannelsHandler,
            {
                "kernels": services.kernels,
                "identity": identity,
                "authorizer": authorizer,
                "live": services.live,
                "allowed_origins": frozenset(o.lower().rstrip("/") for o in allowed_origins),
                "session_days": session_days,
            },
        ),
    ]
    settings: dict[str, Any] = {
        "cookie_secret": services.cookie_secret,
        "xsrf_cookies": True,
        "xsrf_cookie_kwargs": {"samesite": "Lax", "path": "/"},
        "template_path": str(HERE / "templates"),
        "static_path": str(HERE / "static"),
        "default_handler_class": pages.NotFoundHandler,
        "default_handler_args": page,
        "log_function": log_request,
        **tornado_settings,
    }
    return ProxiedApplication(routes, TrustedProxies(trusted_proxies), **settings)
