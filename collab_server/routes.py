"""The one URL table: every route, with what its handler needs injected."""

from __future__ import annotations

from typing import Any

from tornado import web

from .handlers import notebooks, room
from .services import Services

ROOM_ID = r"(?P<room_id>[0-9a-f]{32})"
PATH = r"(?P<path>(?:/.*)?)"


def make_app(services: Services, max_send_buffer: int, **tornado_settings: Any) -> web.Application:
    """The Tornado application for ``services``; ``tornado_settings`` are Tornado's own."""
    api = {"identity": services.identity}
    files = {
        **api,
        "contents": services.contents,
        "rooms": services.rooms,
        "worker": services.worker,
        "checkpoints": services.settings.room.checkpoint_dir,
    }
    routes: list[Any] = [
        (r"/api/user", notebooks.UserHandler, api),
        (rf"/api/contents{PATH}", notebooks.ContentsHandler, files),
        (rf"/api/upload{PATH}", notebooks.UploadHandler, files),
        (rf"/api/notebooks/{ROOM_ID}", notebooks.NotebookHandler, files),
        (rf"/api/notebooks/{ROOM_ID}/checkpoints", notebooks.CheckpointsHandler, files),
        (
            rf"/api/notebooks/{ROOM_ID}/checkpoints/(?P<name>[0-9T.]+\.ipynb)",
            notebooks.CheckpointHandler,
            files,
        ),
        (
            rf"/api/rooms/{ROOM_ID}",
            room.RoomHandler,
            {"rooms": services.rooms, "identity": services.identity,
             "max_send_buffer": max_send_buffer},
        ),
    ]
    return web.Application(routes, **tornado_settings)
