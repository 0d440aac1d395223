"""Errors raised by the document layer; mapped to HTTP and WebSocket codes by the app."""

from __future__ import annotations

from .protocol import ProtocolError


class NotebookError(Exception):
    """Base class of errors about a notebook a user asked for."""


class NotebookNotFound(NotebookError):
    """No notebook has this id or path."""


class InvalidPath(NotebookError):
    """A path is outside the root, malformed, or not allowed."""


class AlreadyExists(NotebookError):
    """Something already exists at the target path."""


class InvalidNotebook(NotebookError):
    """The content is not a valid nbformat 4 notebook."""


class StaleClient(Exception):
    """A client holds a copy of the document that cannot be merged safely; it must reload."""


__all__ = [
    "AlreadyExists",
    "InvalidNotebook",
    "InvalidPath",
    "NotebookError",
    "NotebookNotFound",
    "ProtocolError",
    "StaleClient",
]
