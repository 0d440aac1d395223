"""One server per data folder: an exclusive ``flock`` on ``data_dir/server.lock``."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from .errors import StartupError

LOCK_NAME = "server.lock"


class DataDirLock:
    """Held by a running server, from before it opens a database until it exits.

    ``with DataDirLock(data_dir):`` (or ``async with``) creates the folder (mode
    0700) if missing, takes the lock and writes this process's pid into the file;
    a second server on the same folder gets ``StartupError`` naming the first
    one's pid. The kernel drops the lock when the process dies, even by SIGKILL,
    so a stale file never blocks a restart. The descriptor is not inherited by
    kernels or worker processes (they are started with exec), so they never keep
    the lock alive. Admin subcommands do not take it: they are meant to run while
    the server does.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise StartupError(f"cannot use {self.path.parent}: {e.strerror}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StartupError(
                f"{self.path.parent} is in use by another collab-server (pid {holder}); "
                "stop it or give this one another --data-dir"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Empty the file and drop the lock (the file stays: unlinking it would race)."""
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    async def __aenter__(self) -> DataDirLock:
        """As ``__enter__`` (the lock is never waited for), for ``async with`` lists."""
        return self.__enter__()

    async def __aexit__(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __exit__(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
