"""Errors raised by the kernel layer; mapped to HTTP and WebSocket codes by the app.

Every error carries a message written for an operator's log; the text a user
sees is chosen where the error is mapped (``collab_server/errors.py``).
"""

from __future__ import annotations

from typing import Literal


class KernelError(Exception):
    """Base class of every error about a notebook's kernel."""


class NoSuchKernelSpec(KernelError):
    """No installed kernelspec has this name (the notebook's metadata asked for it)."""

    def __init__(self, kernel_name: str) -> None:
        super().__init__(f"no kernelspec named {kernel_name!r} is installed")
        self.kernel_name = kernel_name


class NoSuchKernel(KernelError):
    """The notebook has no kernel (never started, shut down or culled)."""

    def __init__(self, notebook_id: str) -> None:
        super().__init__(f"notebook {notebook_id!r} has no kernel")
        self.notebook_id = notebook_id


class KernelLimitReached(KernelError):
    """Starting a kernel would exceed a limit.

    ``scope`` is ``"total"`` (the server's ``max_kernels``) or ``"user"`` (the
    owner's ``max_kernels_per_user``); ``limit`` is the configured number.
    """

    def __init__(self, scope: Literal["total", "user"], limit: int, owner: str = "") -> None:
        if scope == "total":
            message = f"the server already runs its maximum of {limit} kernels"
        else:
            message = f"user {owner!r} already has their maximum of {limit} kernels running"
        super().__init__(message)
        self.scope: Literal["total", "user"] = scope
        self.limit = limit
        self.owner = owner


class KernelStartFailed(KernelError):
    """A kernel did not become ready: it timed out, crashed, or could not be launched.

    ``reason`` says which, with the kernel's last lines of output when there are any.
    """

    def __init__(self, kernel_name: str, reason: str) -> None:
        super().__init__(f"kernel {kernel_name!r} failed to start: {reason}")
        self.kernel_name = kernel_name
        self.reason = reason


class KernelIdentityError(KernelError):
    """A kernel cannot run as the user it should: the account is missing, or it would be root."""


class KernelDied(KernelError):
    """The kernel process exited while it was in use (killed, crashed, or over a limit)."""

    def __init__(self, notebook_id: str, exit_code: int | None = None) -> None:
        detail = "" if exit_code is None else f" (exit code {exit_code})"
        super().__init__(f"the kernel of notebook {notebook_id!r} died{detail}")
        self.notebook_id = notebook_id
        self.exit_code = exit_code


class KernelPoolClosed(KernelError):
    """The kernel pool is shutting down or was never started; no kernel can be had."""



class UnknownCell(KernelError):
    """A run request named a cell the notebook does not have; nothing was queued."""

    def __init__(self, cell_id: str) -> None:
        super().__init__(f"the notebook has no cell with id {cell_id!r}")
        self.cell_id = cell_id


class NotACodeCell(KernelError):
    """A run request named a markdown or raw cell; nothing was queued."""

    def __init__(self, cell_id: str, cell_type: str) -> None:
        super().__init__(f"cell {cell_id!r} is a {cell_type} cell, not a code cell")
        self.cell_id = cell_id


class KernelUnavailable(KernelError):
    """The kernel cannot take requests: shut down, dead, or the executor is closed."""


class UnknownInputRequest(KernelError):
    """No execution with this id is waiting for input."""


__all__ = [
    "KernelDied",
    "KernelError",
    "KernelIdentityError",
    "KernelLimitReached",
    "KernelPoolClosed",
    "KernelStartFailed",
    "KernelUnavailable",
    "NotACodeCell",
    "NoSuchKernel",
    "NoSuchKernelSpec",
    "UnknownCell",
    "UnknownInputRequest",
]
