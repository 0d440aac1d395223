"""Jupyter Server's small endpoints: ``/jupyter/api``, ``status``, ``me``, ``kernelspecs``.

- ``GET /jupyter/api``: ``{"version"}``, unauthenticated as in Jupyter Server
  (clients probe it): the Jupyter Server version whose REST shapes we follow.
- ``GET /jupyter/api/status``: ``{"started", "last_activity", "connections", "kernels"}``.
- ``GET /jupyter/api/me``: ``{"identity": {...}, "permissions": {}}``; we
  answer no ``?permissions=`` query (ours are per notebook, not server-wide).
- ``GET /jupyter/api/kernelspecs``: as our ``/api/kernelspecs``.
"""

from __future__ import annotations

import json
import time

from tornado import web

from auth.identity import IdentityProvider
from crdt.rooms import RoomManager
from kernels.running import NotebookKernels

from ..base import APIHandler
from ..kernels import KernelSpecsHandler
from .contents import iso, jupyter_user

JUPYTER_SERVER_VERSION = "2.14.2"


class VersionHandler(web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"version": JUPYTER_SERVER_VERSION}))


class JupyterAPIHandler(APIHandler):
    async def prepare(self) -> None:
        self.user = await jupyter_user(self)


class MeHandler(JupyterAPIHandler):
    async def get(self) -> None:
        name = self.user.name
        self.write_json(
            {
                "identity": {
                    "username": name,
                    "name": name,
                    "display_name": name,
                    "initials": name[:1].upper() or None,
                    "color": None,
                    "avatar_url": None,
                },
                "permissions": {},
            }
        )


class StatusHandler(JupyterAPIHandler):
    def initialize(  # type: ignore[override]
        self,
        identity: IdentityProvider,
        kernels: NotebookKernels,
        rooms: RoomManager,
        started: float,
    ) -> None:
        super().initialize(identity)
        self.kernels = kernels
        self.rooms = rooms
        self.started = started

    async def get(self) -> None:
        self.write_json(
            {
                "started": iso(self.started),
                "last_activity": iso(time.time()),
                "connections": self.rooms.connection_count(),
                "kernels": len(self.kernels.with_kernels()),
            }
        )


class JupyterKernelSpecsHandler(KernelSpecsHandler):
    async def prepare(self) -> None:
        self.user = await jupyter_user(self)
