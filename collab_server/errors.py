"""Domain errors -> HTTP status codes and WebSocket close codes, in one place."""

from __future__ import annotations

from auth.authenticator import LoginRefused, LoginThrottled, LoginUnavailable
from auth.permissions import InvalidRole, PermissionDenied
from auth.sharing import InvalidLink, InvalidShare
from auth.users import InvalidName, LoginConflict, UnknownGroup, UnknownUser
from kernels.errors import (
    KernelDied,
    KernelIdentityError,
    KernelLimitReached,
    KernelPoolClosed,
    KernelStartFailed,
    NoSuchKernel,
    NoSuchKernelSpec,
)
from kernels.execution import (
    KernelUnavailable,
    NotACodeCell,
    UnknownCell,
    UnknownInputRequest,
)
from kernels.history import ExecutionNotFound, InvalidHistoryQuery
from crdt.errors import (
    AlreadyExists,
    InvalidNotebook,
    InvalidPath,
    NotebookNotFound,
    ProtocolError,
    StaleClient,
)

from .export import UnknownFormat
from .notebooks import UploadTooLarge


class StartupError(Exception):
    """The server cannot start, or a subcommand cannot do what it was asked.

    ``main()`` prints it as ``collab-server: <message>`` on stderr and exits 1, so the
    message is one line an operator can act on; no traceback.
    """


# WebSocket close codes (4000-4999 are for applications).
WS_GOING_AWAY = 1001
WS_UNSUPPORTED_DATA = 1003
WS_INVALID_DATA = 1007
WS_POLICY_VIOLATION = 1008
WS_TOO_BIG = 1009
WS_INTERNAL_ERROR = 1011
WS_RELOAD_REQUIRED = 4409  # 4400-4499: y-websocket clients stop reconnecting
WS_NOT_FOUND = 4404
WS_CLIENT_TOO_SLOW = 4008
WS_FORBIDDEN = 4403  # access revoked: do not reconnect
WS_UNAUTHORIZED = 4401  # logged out or token revoked

HTTP_STATUS: dict[type[Exception], int] = {
    InvalidPath: 400,
    InvalidShare: 400,
    InvalidRole: 400,
    InvalidName: 400,
    PermissionDenied: 403,
    LoginConflict: 403,
    LoginRefused: 403,
    LoginThrottled: 429,
    LoginUnavailable: 503,
    NotebookNotFound: 404,
    UnknownUser: 404,
    UnknownGroup: 404,
    InvalidLink: 404,
    AlreadyExists: 409,
    InvalidNotebook: 422,
    InvalidHistoryQuery: 400,
    UnknownFormat: 400,
    UploadTooLarge: 413,
    UnknownCell: 400,
    NotACodeCell: 400,
    ExecutionNotFound: 404,
    UnknownInputRequest: 404,
    NoSuchKernel: 404,
    NoSuchKernelSpec: 422,
    KernelLimitReached: 429,
    KernelUnavailable: 409,
    KernelDied: 409,
    KernelStartFailed: 503,
    KernelIdentityError: 503,
    KernelPoolClosed: 503,
}

WS_CLOSE: dict[type[Exception], int] = {
    ProtocolError: WS_INVALID_DATA,
    StaleClient: WS_RELOAD_REQUIRED,
    NotebookNotFound: WS_NOT_FOUND,
    PermissionDenied: WS_FORBIDDEN,
    InvalidNotebook: WS_INTERNAL_ERROR,
}


def http_status(error: BaseException) -> int | None:
    """The HTTP status of a domain error, or None if it is not one."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return None


def ws_close_code(error: BaseException) -> int:
    for cls in type(error).__mro__:
        if cls in WS_CLOSE:
            return WS_CLOSE[cls]
    return WS_INTERNAL_ERROR


def close_reason(error: BaseException) -> str:
    """A close reason fits in 123 bytes of UTF-8."""
    text = str(error) or type(error).__name__
    return text.encode("utf-8")[:120].decode("utf-8", "ignore")
