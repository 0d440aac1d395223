""".ipynb files <-> Yjs documents, off the event loop.

Turning a 1,000-cell document into nbformat JSON (or back) takes a few
hundred milliseconds of CPU, so the heavy functions here run in a worker
process (:class:`NotebookWorker`): the room hands over the document's encoded
state (about a millisecond to produce) and gets back a hash. Writes are
atomic (temporary file, fsync, rename) and never overwrite a file that
changed on disk since it was last read: that is reported as a conflict so the
room can keep both sides.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import glob
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

import nbformat
from jupyter_ydoc import YNotebook
from pycrdt import Doc

from .repair import notebook_from_doc
from .errors import InvalidNotebook

T = TypeVar("T")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_notebook(data: bytes) -> dict[str, Any]:
    """Parse and validate .ipynb bytes as an nbformat 4 notebook; raise InvalidNotebook."""
    invalid: dict[str, Any] = {}
    try:
        nb = nbformat.reads(
            data.decode("utf-8"), as_version=nbformat.NO_CONVERT, capture_validation_error=invalid
        )
    except Exception as e:  # nbformat raises JSON, schema and conversion errors alike
        raise InvalidNotebook(f"not a notebook: {e}") from e
    if nb.get("nbformat") != 4:
        raise InvalidNotebook("only nbformat 4 notebooks are supported")
    if invalid:
        error = invalid["ValidationError"]
        raise InvalidNotebook(f"invalid notebook: {getattr(error, 'message', error)}")
    return dict(nb)


def serialize_notebook(nb: dict[str, Any]) -> bytes:
    """nbformat's own formatting (as Jupyter writes files), with a final newline."""
    text: str = nbformat.writes(nbformat.from_dict(nb), version=nbformat.NO_CONVERT)
    if not text.endswith("\n"):
        text += "\n"
    return text.encode("utf-8")


Signature = tuple[int, int, int]


def signature_of(st: os.stat_result) -> Signature:
    """(inode, size, mtime_ns): what tells us a file changed."""
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def owner_for(path: Path) -> tuple[int, int] | None:
    """(uid, gid) a file the server writes at ``path`` must have, or None to leave it.

    Run as root, the server writes into users' folders: the file belongs to
    whoever owns it already, else to the folder's owner, so that user's
    kernels (running as them) can read it; its mode stays 0600 (or the old
    file's), so nobody else can.
    """
    if os.geteuid() != 0:
        return None
    try:
        st = path.stat()
    except FileNotFoundError:
        st = path.parent.stat()
    return st.st_uid, st.st_gid


def write_temporary(path: Path, data: bytes) -> tuple[str, Signature]:
    """Write ``data`` to a new hidden file beside ``path`` (fsynced, same mode and owner as
    ``path``, see :func:`owner_for`).

    Returns its name and signature (a rename keeps both). Move it into place
    with :func:`replace_with`.
    """
    mode = None
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        pass
    owner = owner_for(path)
    fd, tmp = tempfile.mkstemp(prefix=f".~{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if owner is not None:
                os.fchown(f.fileno(), *owner)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            signature = signature_of(os.fstat(f.fileno()))
        if mode is not None:
            os.chmod(tmp, mode)
    except BaseException:
        discard_temporary(tmp)
        raise
    return tmp, signature


def replace_with(tmp: str, path: str) -> None:
    """Rename ``tmp`` over ``path`` and make the rename durable (fsync the folder)."""
    try:
        os.replace(tmp, path)
    except BaseException:
        discard_temporary(tmp)
        raise
    dir_fd = os.open(Path(path).parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def discard_temporary(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def remove_stale_temporaries(path: str) -> None:
    """Remove temporary files a crashed save left beside ``path``."""
    target = Path(path)
    for stale in target.parent.glob(f".~{glob.escape(target.name)}.*.tmp"):
        discard_temporary(str(stale))


def atomic_write(path: Path, data: bytes) -> Signature:
    """Replace ``path`` by ``data`` atomically (same-folder temp file, fsync, rename).

    Returns the signature of the file written, taken before it became visible,
    so a change made by someone else right after is still noticed.
    """
    tmp, signature = write_temporary(path, data)
    replace_with(tmp, str(path))
    return signature


def notebook_from_state(state: bytes) -> dict[str, Any]:
    """The document ``state`` as a valid nbformat notebook (see :mod:`crdt.repair`)."""
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    return notebook_from_doc(doc)


# ---- functions run in the worker process -----------------------------------------


@dataclass(frozen=True, slots=True)
class Seed:
    """A document built from an .ipynb file by a fresh client id (the seed)."""

    update: bytes
    client_id: int
    disk_hash: str


def seed_from_file(path: str) -> Seed:
    """Read and validate an .ipynb file and build its Yjs document."""
    data = Path(path).read_bytes()
    nb = parse_notebook(data)
    doc: Doc[Any] = Doc()
    YNotebook(doc).set(nb)
    return Seed(doc.get_update(), doc.client_id, digest(data))


@dataclass(frozen=True, slots=True)
class DiskContent:
    """A file as read: its signature, hash, and the notebook if it differed from what we knew."""

    signature: Signature
    disk_hash: str
    notebook: dict[str, Any] | None


def read_if_changed(path: str, *known_hashes: str | None) -> DiskContent:
    """Read a file; parse it only if its content differs from every one of ``known_hashes``."""
    with open(path, "rb") as f:
        signature = signature_of(os.fstat(f.fileno()))
        data = f.read()
    disk_hash = digest(data)
    if disk_hash in known_hashes:
        return DiskContent(signature, disk_hash, None)
    return DiskContent(signature, disk_hash, parse_notebook(data))


@dataclass(frozen=True, slots=True)
class SaveResult:
    """What :func:`prepare_save` found.

    ``conflict``: the file changed on disk since ``expected_hash``; nothing
    was written. Otherwise, if the file already holds the document,
    ``temporary`` is None; else the new content waits in ``temporary``
    (hash ``disk_hash``, signature ``signature``) for :func:`replace_with`.
    """

    disk_hash: str
    conflict: bool
    temporary: str | None = None
    signature: Signature | None = None


def prepare_save(path: str, state: bytes, expected_hash: str | None) -> SaveResult:
    """Serialize the document ``state`` for ``path`` into a temporary file beside it.

    The caller records ``disk_hash`` durably, then renames the file into
    place: whatever moment the server dies at, the file on disk is one whose
    hash the store knows, so it is never mistaken for someone else's change.
    """
    target = Path(path)
    data = serialize_notebook(notebook_from_state(state))
    try:
        current = target.read_bytes()
    except FileNotFoundError:
        current = None
    if current is not None:
        current_hash = digest(current)
        if current == data:
            return SaveResult(current_hash, conflict=False)
        if expected_hash is not None and current_hash != expected_hash:
            return SaveResult(current_hash, conflict=True)
    tmp, signature = write_temporary(target, data)
    return SaveResult(digest(data), conflict=False, temporary=tmp, signature=signature)


def write_checkpoint(folder: str, state: bytes) -> str:
    """Save the document ``state`` as a timestamped .ipynb in ``folder``; return its path."""
    directory = Path(folder)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{time.time() % 1:.6f}"[1:]
    target = directory / f"{stamp}.ipynb"
    atomic_write(target, serialize_notebook(notebook_from_state(state)))
    return str(target)


def _warm() -> None:
    """Import everything in the worker before the first real job."""


# ---- the worker --------------------------------------------------------------------


class NotebookWorker:
    """A small process pool for notebook (de)serialization.

    A crashed worker process is replaced on the next call. Use ``async with``
    or ``start()``/``stop()``.
    """

    def __init__(self, processes: int = 1) -> None:
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"))

    async def start(self) -> None:
        self._pool = self._new_pool()
        await self.run(_warm)

    async def stop(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._pool is None:
            raise RuntimeError("notebook worker is stopped")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn, *args)
        except BrokenProcessPool:
            self._pool = self._new_pool()
            return await loop.run_in_executor(self._pool, fn, *args)


def stat_signature(path: Path) -> Signature | None:
    """(inode, size, mtime_ns) of a file, or None if it is gone."""
    try:
        return signature_of(path.stat())
    except FileNotFoundError:
        return None
