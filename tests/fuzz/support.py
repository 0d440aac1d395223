"""What the hostile-input tests share: Hypothesis settings, known bugs, clients, snapshots.

How Hypothesis runs against a real server here. Each test is an ``async def``
decorated with ``@given``; pytest-asyncio (``asyncio_mode = "auto"``) wraps
Hypothesis' inner test so that *every example runs in the same event loop as
the test's fixtures*. The ``server`` / ``make_server`` fixtures are therefore
created once per test function and every example talks to that one running
server, which is what we want: the server must survive everything the
examples throw at it, one after another. Hypothesis warns about
function-scoped fixtures shared between examples; that health check is
switched off on purpose. Each example builds what it attacks (a fresh
notebook, a fresh connection), so examples stay independent and shrinking
stays meaningful; what is shared (sentinel rooms, users) is exactly what must
keep working.

Reproducibility: by default every test is derandomized (Hypothesis derives
its seed from the test itself, so each run draws the same examples) and the
example database is off, so nothing outside the run changes what is drawn.
``FUZZ_SEED=<int>`` draws from that seed instead (printed in the pytest
header), ``FUZZ_SCALE=<float>`` multiplies every ``max_examples`` (a soak run
by hand: ``FUZZ_SCALE=20``), ``FUZZ_STRICT=1`` turns the known bugs below back
into failures.

Known bugs. A fuzzer that keeps rediscovering a bug already reported is
useless for finding the next one, so an observation that a *known* bug
explains is counted (``hypothesis.event``; outside Hypothesis, a
``KnownBugWarning``) instead of failing the example.
Each known bug is pinned by its own small test marked
``xfail(strict=True)``: when the bug is fixed that test passes, the strict
xfail fails the suite, and whoever fixed it removes the marker *and* the
entry here, which re-arms the fuzzer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

import nbformat
import websockets
from hypothesis import HealthCheck, event, note, seed, settings
from hypothesis.control import currently_in_test_context
from pycrdt import Doc, Text
from sqlalchemy import inspect, text

from crdt import protocol
from crdt.notebook_io import notebook_from_state, serialize_notebook
from tests.conftest import Server
from tests.yclient import YClient

T = TypeVar("T")

FUZZ_SEED = os.environ.get("FUZZ_SEED")
FUZZ_SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
FUZZ_STRICT = os.environ.get("FUZZ_STRICT", "") not in ("", "0")

TIMEOUT = 10.0


def fuzz(max_examples: int) -> Callable[[T], T]:
    """Hypothesis settings for a test that loops its examples through one running server."""

    def apply(test: T) -> T:
        configured = settings(
            max_examples=max(1, round(max_examples * FUZZ_SCALE)),
            deadline=None,
            database=None,
            derandomize=FUZZ_SEED is None,
            print_blob=False,
            suppress_health_check=[
                HealthCheck.function_scoped_fixture,
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.filter_too_much,
                HealthCheck.large_base_example,
            ],
        )(test)
        if FUZZ_SEED is not None:
            configured = seed(int(FUZZ_SEED))(configured)
        return configured

    return apply


# ---- known bugs ------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownBug:
    key: str
    summary: str
    pinned_by: str


KNOWN_BUGS = {
    bug.key: bug
    for bug in [
    ]
}


def known_bug(key: str, observed: str) -> None:
    """Record an observation explained by a known, pinned bug (fail under FUZZ_STRICT=1)."""
    bug = KNOWN_BUGS[key]
    message = f"known bug {key} ({bug.summary}; pinned by {bug.pinned_by}): {observed}"
    if FUZZ_STRICT:
        raise AssertionError(message)
    if currently_in_test_context():  # a Hypothesis example: shown if it fails, and counted
        note(message)
        event(f"known bug: {key}")
    else:
        warnings.warn(message, KnownBugWarning, stacklevel=2)


class KnownBugWarning(UserWarning):
    """An observation a known bug explains, made outside Hypothesis (listed by pytest)."""


# ---- notebooks ------------------------------------------------------------------------------


def code_cell(cell_id: str, source: str) -> dict[str, Any]:
    return {
        "id": cell_id,
        "cell_type": "code",
        "metadata": {},
        "execution_count": None,
        "source": source,
        "outputs": [],
    }


def small_notebook() -> dict[str, Any]:
    """The notebook every attacked room starts from: a code cell and a markdown cell."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.from_dict(code_cell("first", "x = 1\n")),
        nbformat.from_dict(
            {"id": "second", "cell_type": "markdown", "metadata": {}, "source": "# notes"}
        ),
    ]
    return dict(nb)


def validate_ipynb(data: bytes) -> dict[str, Any]:
    """Parse .ipynb bytes and check them with nbformat's own validator; raise if invalid."""
    nb = nbformat.reads(data.decode("utf-8"), as_version=nbformat.NO_CONVERT)
    nbformat.validate(nb)
    assert nb["nbformat"] == 4
    return dict(nb)


def derived_ipynb(state: bytes) -> bytes:
    """The .ipynb the server derives from a document state: what it saves and serves."""
    return serialize_notebook(notebook_from_state(state))


def derivation_mismatch(saved: bytes, state: bytes) -> str | None:
    """None if ``saved`` is exactly the .ipynb the server derives from the document
    ``state`` (ids of cells without a unique one included: they are given stably)."""
    if saved == derived_ipynb(state):
        return None
    return f"the .ipynb is not what the server derives from the document: {saved[:300]!r}"


def state_vector(state: bytes) -> dict[int, int]:
    """An encoded state vector (``Doc.get_state()``) as client id -> clock.

    Clients at clock 0 (nothing of theirs integrated) are left out: they mean nothing, and
    pycrdt may list one after refusing an update that names that client.
    """
    return {client: clock for client, clock in protocol.decode_state_vector(state).items() if clock}


def stored_state_vector(stored: Any) -> dict[int, int]:
    """The state vector of the document a store row holds (snapshot, then its tail)."""
    doc: Doc[Any] = Doc()
    doc.apply_update(stored.snapshot)
    for update in stored.tail:
        doc.apply_update(update)
    return state_vector(doc.get_state())


def refused_halfway(base: bytes, frame: bytes | str) -> dict[int, int] | None:
    """If ``frame`` is an update that pycrdt refuses only after integrating part of it into
    a document holding ``base``, the state vector that part leaves; otherwise None.

    The server closes such a sender with 1007, but the part already integrated is a
    valid change by an editor: it stays in the document, is stored and broadcast.
    """
    if not isinstance(frame, bytes):
        return None
    try:
        message = protocol.decode_message(frame)
    except protocol.ProtocolError:
        return None
    if not isinstance(message, protocol.SyncMessage) or message.step not in (
        protocol.SyncStep.UPDATE,
        protocol.SyncStep.STEP2,
    ):
        return None
    doc: Doc[Any] = Doc()
    doc.apply_update(base)
    before = state_vector(doc.get_state())
    try:
        doc.apply_update(message.payload)
    except BaseException as e:  # pycrdt's PanicException is not an Exception
        if not isinstance(e, Exception) and type(e).__name__ != "PanicException":
            raise
        after = state_vector(doc.get_state())
        return after if after != before else None
    return None


# ---- clients ------------------------------------------------------------------------------


class RecordingClient(YClient):
    """A YClient that also keeps every frame it receives, undecoded."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frames: list[bytes] = []

    def _handle(self, data: bytes) -> None:
        self.frames.append(data)
        super()._handle(data)


class Pair:
    """Two clients of one room who must keep seeing each other's edits.

    ``await pair.check(label)`` makes each side type a fresh marker and waits
    until the other side has it: the room is alive and syncing. The marker
    goes into the first cell's source (``in_cell=True``, for a room nobody
    attacks) or into a text of its own, ``witness``, which no attack on the
    notebook's structure can get in the way of. Because the server sends each
    client its frames in order, once the marker has arrived every frame the
    server sent that client before it has arrived too.
    """

    def __init__(
        self,
        server: Server,
        notebook_id: str,
        a: str = "alice",
        b: str = "carol",
        in_cell: bool = False,
    ) -> None:
        url = server.ws_url(notebook_id)
        self.notebook_id = notebook_id
        self.in_cell = in_cell
        self.a = RecordingClient(url, server.token(a))
        self.b = RecordingClient(url, server.token(b))
        self._count = 0

    async def __aenter__(self) -> Self:
        await self.a.__aenter__()
        await self.b.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.b.close()
        await self.a.close()

    def _text(self, client: YClient) -> Text:
        if self.in_cell:
            source: Text = client.notebook.ycells[0]["source"]
            return source
        return client.doc.get("witness", type=Text)

    async def check(self, label: str = "") -> None:
        for writer, reader in ((self.a, self.b), (self.b, self.a)):
            self._count += 1
            marker = f"[{label}#{self._count}]"
            text_ = self._text(writer)
            text_ += marker
            await reader.wait_for(
                lambda r=reader, m=marker: m in str(self._text(r)), timeout=TIMEOUT
            )


@dataclass
class Outcome:
    """What became of an attacking connection once the server had dealt with its message."""

    closed: bool
    code: int | None
    reason: str
    frames: list[bytes]

    def __str__(self) -> str:
        return f"closed {self.code} {self.reason!r}" if self.closed else "still open"


class RawClient:
    """A y-websocket connection that sends exactly the bytes it is given: the attacker.

    It never answers the server; :meth:`settle` sends a probe (sync step 1
    with an empty state vector, which always gets a sync step 2 reply) and
    waits for that reply or for the server to close the socket. The server
    handles a connection's messages in order, so either way the attack
    message has been dealt with.
    """

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.frames: list[bytes] = []
        self.ws: Any = None
        self.closed = asyncio.Event()
        self.arrived = asyncio.Event()
        self._replies_expected = 0
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self.ws = await websockets.connect(
            self.url,
            additional_headers={"Authorization": f"token {self.token}"},
            max_size=None,
            ping_interval=None,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                self.frames.append(frame if isinstance(frame, bytes) else frame.encode())
                self.arrived.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()
            self.arrived.set()

    async def send(self, message: bytes | str) -> None:
        """Send one frame (``str``: a text frame); count the sync step 2 replies it asks for."""
        if isinstance(message, bytes) and _is_sync_step1(message):
            self._replies_expected += 1
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(message)

    def _step2_replies(self) -> int:
        return sum(1 for f in self.frames if f[:2] == b"\x00\x01")

    async def settle(self, timeout: float = TIMEOUT) -> Outcome:
        await self.send(protocol.sync_step1(b"\x00"))
        async with asyncio.timeout(timeout):
            while not self.closed.is_set() and self._step2_replies() < self._replies_expected:
                self.arrived.clear()
                await self.arrived.wait()
        code = self.ws.close_code if self.closed.is_set() else None
        reason = (self.ws.close_reason or "") if self.closed.is_set() else ""
        return Outcome(self.closed.is_set(), code, reason, list(self.frames))


def _is_sync_step1(message: bytes) -> bool:
    try:
        decoded = protocol.decode_message(message)
    except protocol.ProtocolError:
        return False
    return isinstance(decoded, protocol.SyncMessage) and decoded.step == protocol.SyncStep.STEP1


# ---- what forwarded frames must be, for any Yjs client ----------------------------------

MAX_SAFE_INTEGER = 2**53 - 1  # lib0 reads varuints as JavaScript numbers


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(text_: str) -> Any:
    """Parse JSON as JSON.parse does: NaN, Infinity and -Infinity are not JSON."""
    return json.loads(text_, parse_constant=_reject_constant)


def relayed_awareness(frames: list[bytes]) -> list[protocol.AwarenessEntry]:
    """The awareness entries in a list of server frames (decoded by our own strict decoder)."""
    entries: list[protocol.AwarenessEntry] = []
    for frame in frames:
        message = protocol.decode_message(frame)
        if isinstance(message, protocol.AwarenessMessage):
            entries.extend(protocol.decode_awareness_update(message.payload))
    return entries


def awareness_problems(entry: protocol.AwarenessEntry) -> list[str]:
    """Why a relayed awareness entry would break a y-protocols client (empty: it would not)."""
    problems = []
    try:
        strict_json(entry.state_json)
    except ValueError as e:
        problems.append(f"state is not standard JSON ({e}): {entry.state_json[:120]!r}")
    return problems


# ---- snapshots ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoomSnapshot:
    update: bytes
    state: bytes
    stored: Any
    file: bytes
    dirty: bool


async def room_snapshot(server: Server, notebook_id: str, path: Path) -> RoomSnapshot:
    """The room's document, what the store holds for it, and its file, once stored."""
    room = server.services.rooms.get(notebook_id)
    assert room is not None, "the room is not open"
    await server.services.store.barrier()
    stored = await server.services.store.load(notebook_id)
    return RoomSnapshot(
        room.doc.get_update(), room.doc.get_state(), stored, path.read_bytes(), room.dirty
    )


VOLATILE_COLUMNS = {
    "users": {"last_login"},
    "api_tokens": {"last_used"},
    "sessions": {"last_seen"},
}


def database_rows(server: Server) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the three databases, minus columns touched by reading."""
    services = server.services
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for label, engine in (
        ("db", services.db),
        ("store", services.store_db),
        ("executions", services.executions_db),
    ):
        with engine.connect() as conn:
            for table in sorted(inspect(conn).get_table_names()):
                result = conn.execute(text(f'SELECT * FROM "{table}"'))
                columns = list(result.keys())
                skip = VOLATILE_COLUMNS.get(table, set())
                keep = [i for i, c in enumerate(columns) if c not in skip]
                rows = [tuple(row[i] for i in keep) for row in result.all()]
                tables[f"{label}.{table}"] = sorted(rows, key=repr)
    return tables


def file_tree(folder: Path, exclude_top: str | None = None) -> dict[str, Any]:
    """Path -> (kind, mode, content) of everything under ``folder``; ``exclude_top`` skipped."""
    tree: dict[str, Any] = {}
    if not folder.exists():
        return tree
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if exclude_top is not None and rel.parts[0] == exclude_top:
            continue
        st = path.lstat()
        if path.is_symlink():
            tree[str(rel)] = ("link", os.readlink(path))
        elif path.is_dir():
            tree[str(rel)] = ("dir", st.st_mode)
        else:
            tree[str(rel)] = ("file", st.st_mode, path.read_bytes())
    return tree


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Human-readable differences between two snapshots (keys added, removed, changed)."""
    out = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            out.append(f"{key}: {_short(before.get(key))} -> {_short(after.get(key))}")
    return out


def _short(value: Any) -> str:
    text_ = repr(value)
    return text_ if len(text_) < 300 else text_[:300] + "..."


# ---- REST answers -----------------------------------------------------------------------


def json_error(body: bytes, status: int) -> str | None:
    """None if ``body`` is the API's JSON error for ``status``; else what is wrong with it."""
    try:
        value = json.loads(body)
    except ValueError:
        return f"error body is not JSON: {body[:200]!r}"
    if not isinstance(value, dict) or set(value) != {"status", "error", "message"}:
        return f"error body is not {{status, error, message}}: {body[:200]!r}"
    if value["status"] != status:
        return f"error body says status {value['status']}, the response {status}"
    return None
