"""A real collab-server in its own process, that tests can SIGKILL and restart.

``ServerProcess`` runs ``python -m collab_server`` on a fixed loopback port
(so a restarted server is found where clients left it) with its own root and
data folders, in its own process group (``kill`` takes its worker processes
down with it). Its log (stdout and stderr of every incarnation) goes to one
file. ``prepare_users`` creates users and API tokens in the data folder, the
way ``collab-server token create`` does, before the server first starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient

from auth.schema import metadata
from auth.tokens import Tokens
from collab_server.database import open_engine

REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def kernel_reachable_dir(prefix: str, keep: Callable[[], bool] = lambda: False) -> Iterator[Path]:
    """A new folder under /tmp that kernels running as another user can traverse.

    Not under pytest's ``tmp_path``: pytest makes ``/tmp/pytest-of-<user>``
    0700 again whenever any pytest session starts, and a kernel running as
    ``nobody`` then cannot reach its notebook folder. Removed afterwards
    unless ``keep()`` says otherwise (to look at a failed run's server log).
    """
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        if not keep():
            shutil.rmtree(folder, ignore_errors=True)


def prepare_users(data_dir: Path, usernames: list[str]) -> dict[str, str]:
    """Create the users and one API token each in the server's database; return the tokens."""
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = open_engine(f"sqlite:///{data_dir / 'collab.db'}")
    try:
        metadata.create_all(engine)
        tokens = Tokens(engine)
        return {name: tokens.create(name, note="fault tests") for name in usernames}
    finally:
        engine.dispose()


FileSignature = tuple[int, int, int] | None


def file_signature(path: Path) -> FileSignature:
    """(inode, mtime, size) of ``path``, or None if it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def kill_when_file_changes(
    path: Path, pgid: int, timeout: float, before: FileSignature | None = None
) -> bool:
    """Busy-wait (in a thread) until ``path`` is replaced or rewritten, then SIGKILL ``pgid``.

    ``before`` is the signature to compare with (default: the file as it is now).
    Returns False if nothing changed within ``timeout`` (nothing is killed then).
    """
    if before is None:
        before = file_signature(path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if file_signature(path) != before:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            return True
        time.sleep(0.0002)
    return False


class ServerProcess:
    """One server's folders and port; ``start``/``kill``/``stop`` its process, any number of times."""

    def __init__(
        self,
        root_dir: Path,
        data_dir: Path,
        port: int,
        log_path: Path,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.root_dir = root_dir
        self.data_dir = data_dir
        self.port = port
        self.log_path = log_path
        self.options = {
            "KernelPool.pool_size": 0,
            "CollabServer.authenticators": "[]",
            **(options or {}),
        }
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.kills = 0
        self._drain: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def store_path(self) -> Path:
        return self.data_dir / "updates.db"

    async def start(self, timeout: float = 30) -> None:
        """Start the server and return once it listens; raises RuntimeError if it does not."""
        assert not self.running
        args = [
            f"--port={self.port}",
            f"--root-dir={self.root_dir}",
            f"--data-dir={self.data_dir}",
            *(f"--{k}={v}" for k, v in self.options.items()),
        ]
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start #{self.starts} at {time.time():.3f} =====\n".encode())
            log.flush()
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "collab_server",
                *args,
                cwd=REPO,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # its own process group: kill() takes its workers too
            )
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                line = await self.process.stdout.readline()
        except TimeoutError:
            self.kill()
            raise RuntimeError(
                f"server did not start within {timeout} s; see {self.log_path}"
            ) from None
        if not re.search(rf":{self.port}/", line.decode(errors="replace")):
            self.kill()
            raise RuntimeError(f"server did not start: {line!r}; see {self.log_path}")
        self._drain = asyncio.create_task(self._drain_stdout(self.process.stdout))

    async def _drain_stdout(self, stdout: asyncio.StreamReader) -> None:
        with self.log_path.open("ab") as log:
            async for line in stdout:
                log.write(line)

    def kill(self) -> None:
        """SIGKILL the server's whole process group (no saving, no goodbye)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.kills += 1

    async def wait(self) -> None:
        if self.process is not None:
            await self.process.wait()
        if self._drain is not None:
            await asyncio.gather(self._drain, return_exceptions=True)
            self._drain = None

    async def kill_and_wait(self) -> None:
        self.kill()
        await self.wait()

    async def stop(self) -> None:
        """SIGTERM (the server saves and exits); SIGKILL after 30 s."""
        if self.running:
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.kill()
        await self.wait()
        # Whatever the server left behind in its group (workers) goes too.
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    async def api(self, method: str, path: str, token: str, body: Any = None) -> Any:
        """Call the REST API; returns the decoded JSON, raises on an error status."""
        data = (
            json.dumps(body).encode()
            if body is not None
            else (b"" if method in ("PUT", "POST") else None)
        )
        response = await AsyncHTTPClient().fetch(
            self.url + path,
            method=method,
            body=data,
            headers={"Authorization": f"token {token}"},
            raise_error=False,
        )
        if response.code >= 400:
            raise RuntimeError(f"{method} {path}: {response.code} {response.body!r}")
        return json.loads(response.body) if response.body else None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
