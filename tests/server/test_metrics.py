"""/metrics and /health on a real server: real WebSocket clients, a real kernel, real PAM,
SQLite files locked by another connection, a PostgreSQL database that stops taking connections."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from tornado.httpclient import AsyncHTTPClient
from tornado.web import create_signed_value

from auth.pam import PAMAuthenticator
from collab_server.handlers.base import SESSION_COOKIE
from collab_server.health import DatabaseHealth
from tests.auth.unix_users import UnixUsers, throwaway_unix_users
from tests.conftest import Server, ServerFactory, wait_until
from tests.faults.server_process import ServerProcess
from tests.interop.node_client import unused_port
from tests.server.test_kernels import finished, kernel_state, notebook
from tests.webclient import WebClient
from tests.yclient import YClient

TIMEOUT = 60
POSTGRES = "postgresql+psycopg://postgres@localhost:5432"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(body: bytes) -> Samples:
    """Every sample of a scrape, by (name, sorted labels), through prometheus_client's parser."""
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


OUTCOMES = ("ok", "error", "interrupted", "aborted")
NO_KERNELS = dict.fromkeys(("idle", "busy", "starting", "restarting", "dead"), 0.0)


def kernels_by_state(samples: Samples) -> dict[str, float]:
    return {state: value(samples, "collab_kernels", state=state) for state in NO_KERNELS}


async def scrape(server: Server, user: str | None = "ada") -> Samples:
    response = await server.api("GET", "/metrics", user=user)
    assert response.code == 200, response.body
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(response.body)


def session_cookie(server: Server, name: str, admin: bool = False) -> dict[str, str]:
    """The Cookie header of a real login session of ``name``, as the login form would set."""
    user = server.services.users.get_or_create(name, admin=admin)
    secret = server.services.sessions.create(user)
    signed = create_signed_value(server.services.cookie_secret, SESSION_COOKIE, secret).decode()
    return {"Cookie": f"{SESSION_COOKIE}={signed}"}


async def wait_for_async(condition: Callable[[], Awaitable[bool]], timeout: float) -> None:
    """Wait until ``await condition()`` is true (each check is a real scrape)."""
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.05)


@pytest.fixture
def unix_users() -> Iterator[UnixUsers]:
    yield from throwaway_unix_users()


async def test_metrics_count_what_users_did(
    unix_users: UnixUsers, make_server: ServerFactory
) -> None:
    """Open a room, edit, run a cell, fail a login: the scrape says so."""
    name, password = unix_users.add_user()
    server = await make_server(authenticators=[PAMAuthenticator()])
    server.services.users.get_or_create("ada", admin=True)
    before = await scrape(server)
    assert value(before, "collab_rooms_open") == 0
    assert value(before, "collab_connections") == 0
    assert kernels_by_state(before) == NO_KERNELS

    notebook_id = await server.create_notebook("alice/m.ipynb", notebook(("run", "6 * 7")))
    async with YClient(server.ws_url(notebook_id), server.token("alice")) as alice:
        alice.notebook.ycells[0]["source"].insert(0, "# the answer\n")
        room = server.services.rooms.get(notebook_id)
        assert room is not None
        await wait_until(lambda: str(room.notebook.ycells[0]["source"]).startswith("# the answer"))
        response = await server.api(
            "POST", f"/api/notebooks/{notebook_id}/execute", {"cell_ids": ["run"]}
        )
        assert response.code == 202, response.body
        await alice.wait_for(lambda: finished(alice, "run"), timeout=TIMEOUT)
        await alice.wait_for(lambda: kernel_state(alice).get("status") == "idle", timeout=TIMEOUT)
        refused = await WebClient(server.url).login(name, "not " + password)
        assert refused.code == 403

        after = await scrape(server)

    assert value(after, "collab_rooms_open") == 1
    assert value(after, "collab_connections") == 1
    assert value(after, "collab_updates_total", origin="client") == 1  # the one edit
    assert value(after, "collab_updates_total", origin="server") > value(
        before, "collab_updates_total", origin="server"
    )  # the run's outputs and execution count
    executions = {s: value(after, "collab_executions_total", status=s) for s in OUTCOMES}
    assert executions == {"ok": 1, "error": 0, "interrupted": 0, "aborted": 0}
    assert kernels_by_state(after) == {**NO_KERNELS, "idle": 1}
    assert value(after, "collab_kernel_spares") == 0
    assert value(after, "collab_failed_logins_total", reason="refused") == 1
    assert value(after, "collab_failed_logins_total", reason="throttled") == 0
    assert value(after, "collab_store_write_lag_seconds") >= 0
    assert value(after, "collab_autosave_queue") >= 0
    assert value(after, "process_resident_memory_bytes") > 0

    # The client left: no connection, the room stays loaded until its idle timeout.
    await wait_until(lambda: server.services.rooms.connection_count() == 0)
    assert value(await scrape(server), "collab_connections") == 0


async def test_a_busy_kernel_and_an_interrupted_run(server: Server) -> None:
    server.services.users.get_or_create("ada", admin=True)
    spin = notebook(("spin", "while True: pass"))
    notebook_id = await server.create_notebook("alice/spin.ipynb", spin)
    async with YClient(server.ws_url(notebook_id), server.token("alice")) as alice:
        response = await server.api(
            "POST", f"/api/notebooks/{notebook_id}/execute", {"cell_ids": ["spin"]}
        )
        assert response.code == 202, response.body
        await alice.wait_for(lambda: kernel_state(alice).get("status") == "busy", timeout=TIMEOUT)
        busy = await scrape(server)
        assert kernels_by_state(busy) == {**NO_KERNELS, "busy": 1}
        interrupted = await server.api("POST", f"/api/notebooks/{notebook_id}/kernel/interrupt")
        assert interrupted.code == 204
        await alice.wait_for(lambda: finished(alice, "spin"), timeout=TIMEOUT)
        await alice.wait_for(lambda: kernel_state(alice).get("status") == "idle", timeout=TIMEOUT)
    after = await scrape(server)
    assert value(after, "collab_executions_total", status="interrupted") == 1
    assert value(after, "collab_executions_total", status="ok") == 0
    assert kernels_by_state(after) == {**NO_KERNELS, "idle": 1}


async def test_websockets_the_server_closes_are_counted_by_code(server: Server) -> None:
    """A client sending a text frame is closed with 1003; a notebook deleted under its
    clients closes them with 4404; each is counted under its code."""
    server.services.users.get_or_create("ada", admin=True)
    notebook_id = await server.create_notebook("alice/closing.ipynb", notebook(("c", "1")))
    async with YClient(server.ws_url(notebook_id), server.token()) as chatty, YClient(
        server.ws_url(notebook_id), server.token("bob")
    ) as bob:
        await chatty.ws.send("hello")  # text: y-websocket speaks binary only
        await asyncio.wait_for(chatty.closed.wait(), 10)
        assert chatty.close_code == 1003
        deleted = await server.api("DELETE", "/api/contents/alice/closing.ipynb")
        assert deleted.code == 204, deleted.body
        await asyncio.wait_for(bob.closed.wait(), 10)
        assert bob.close_code == 4404
    metrics = await scrape(server)
    assert value(metrics, "collab_websocket_closes_total", code="1003") == 1
    assert value(metrics, "collab_websocket_closes_total", code="4404") == 1
    closes = [labels for name, labels in metrics if name == "collab_websocket_closes_total"]
    assert {dict(labels)["code"] for labels in closes} == {"1003", "4404"}


async def test_a_stalled_store_shows_as_write_lag_and_queued_autosaves(
    make_server: ServerFactory,
) -> None:
    """Another process holds the update store's SQLite file locked: edits wait to be stored,
    the lag grows and the second room's autosave waits behind the first; unlocked, both drain."""
    server = await make_server()
    server.services.users.get_or_create("ada", admin=True)
    ids = [await server.create_notebook(f"alice/n{i}.ipynb", notebook(("c", "1"))) for i in (1, 2)]
    store_file = server.services.settings.data_dir / "updates.db"
    async with YClient(server.ws_url(ids[0]), server.token()) as one, YClient(
        server.ws_url(ids[1]), server.token()
    ) as two:
        locker = sqlite3.connect(store_file, isolation_level=None)
        try:
            locker.execute("BEGIN EXCLUSIVE")
            for client in (one, two):
                client.notebook.ycells[0]["source"].insert(0, "# waiting\n")
            metrics: Samples = {}

            async def stalled() -> bool:
                nonlocal metrics
                metrics = await scrape(server)
                return (
                    value(metrics, "collab_store_write_lag_seconds") >= 0.5
                    and value(metrics, "collab_autosave_queue") == 1
                )

            await wait_for_async(stalled, timeout=20)
            assert value(metrics, "collab_connections") == 2
        finally:
            locker.execute("ROLLBACK")
            locker.close()

        async def drained() -> bool:
            metrics = await scrape(server)
            return (
                value(metrics, "collab_store_write_lag_seconds") == 0
                and value(metrics, "collab_autosave_queue") == 0
            )

        await wait_for_async(drained, timeout=30)


async def test_only_admins_scrape_metrics_by_token_or_session(server: Server) -> None:
    server.services.users.get_or_create("ada", admin=True)
    server.services.users.get_or_create("bob")

    anonymous = await server.api("GET", "/metrics", user=None)
    assert anonymous.code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'token realm="collab-server"'
    assert json.loads(anonymous.body)["status"] == 401
    assert (await server.api("GET", "/metrics", user="bob")).code == 403
    assert (await server.api("GET", "/metrics", user="ada")).code == 200

    adas_session = session_cookie(server, "ada", admin=True)
    by_session = await server.api("GET", "/metrics", user=None, headers=adas_session)
    assert by_session.code == 200
    assert ("collab_rooms_open", ()) in parse(by_session.body)
    bobs_session = session_cookie(server, "bob")
    assert (await server.api("GET", "/metrics", user=None, headers=bobs_session)).code == 403
    forged = {"Authorization": "token " + secrets.token_hex(32)}
    assert (await server.api("GET", "/metrics", user=None, headers=forged)).code == 401


async def test_metrics_without_authentication_when_configured(make_server: ServerFactory) -> None:
    server = await make_server(authenticate_metrics=False)
    response = await server.api("GET", "/metrics", user=None)
    assert response.code == 200
    assert value(parse(response.body), "collab_rooms_open") == 0
    # The text format, or OpenMetrics for a scraper that asks for it.
    openmetrics = await server.api(
        "GET", "/metrics", user=None, headers={"Accept": "application/openmetrics-text"}
    )
    assert openmetrics.headers["Content-Type"].startswith("application/openmetrics-text")
    assert openmetrics.body.endswith(b"# EOF\n")


async def test_health_needs_no_credentials(server: Server) -> None:
    responses = await asyncio.gather(*(server.api("GET", "/health", user=None) for _ in range(5)))
    for response in responses:  # five balancers at once
        assert response.code == 200
        assert json.loads(response.body) == {
            "status": "ok",
            "checks": {"database": "ok", "store": "ok", "executions": "ok"},
        }
        assert response.headers["Cache-Control"] == "no-store"


@pytest.fixture
async def postgres_database() -> AsyncIterator[str]:
    """A PostgreSQL database of this test's own; its URL. Dropped at the end, even if it was
    made to refuse connections."""
    name = f"collab_health_{secrets.token_hex(4)}"
    admin = create_engine(f"{POSTGRES}/test", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def refuse_connections(database: str, refuse: bool) -> None:
    """Make ``database`` refuse new connections and end the open ones, or accept them again."""
    admin = create_engine(f"{POSTGRES}/test", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            allow = "false" if refuse else "true"
            conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {allow}'))
            if refuse:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :d"
                    ),
                    {"d": database},
                )
    finally:
        admin.dispose()


async def test_health_answers_503_while_the_database_refuses_connections(
    make_server: ServerFactory, postgres_database: str
) -> None:
    url = f"{POSTGRES}/{postgres_database}"
    server = await make_server(db_url=url)  # the store and the execution log go there too
    assert (await server.api("GET", "/health", user=None)).code == 200

    refuse_connections(postgres_database, True)
    try:
        response = await server.api("GET", "/health", user=None)
        assert response.code == 503
        body = json.loads(response.body)
        assert body == {
            "status": "failing",
            "checks": dict.fromkeys(("database", "store", "executions"), "unreachable"),
        }
        assert postgres_database not in response.body.decode()  # no URL, no driver message
    finally:
        refuse_connections(postgres_database, False)

    recovered = await server.api("GET", "/health", user=None)
    assert recovered.code == 200, recovered.body


async def test_a_database_that_never_answers_is_reported_as_timeout_without_piling_up() -> None:
    """A real listener on loopback that accepts connections and never says a word: the check
    gives up after its timeout, later checks answer "timeout" at once without opening more
    connections, and once the peer is gone the next check runs (and fails) for real."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    listener.setblocking(False)
    engine = create_engine(f"postgresql+psycopg://nobody@127.0.0.1:{port}/silent")
    health = DatabaseHealth({"store": engine}, timeout=0.5)

    async def accept() -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(listener)
            accepted.append(conn)

    acceptor = asyncio.create_task(accept())
    try:
        # Two probes at once share one check, which times out.
        both = await asyncio.gather(health.check(), health.check())
        assert both == [{"store": "timeout"}] * 2
        assert len(accepted) == 1
        for _ in range(3):
            assert await health.check() == {"store": "timeout"}
        assert len(accepted) == 1  # the hung check is still the only one
        # The peer hangs up and nothing listens any more: the hung connect fails, its thread
        # returns, and the next check runs for real and finds the port closed.
        acceptor.cancel()
        listener.close()
        accepted[0].close()

        async def refused() -> bool:
            return await health.check() == {"store": "unreachable"}

        await wait_for_async(refused, timeout=10)
        assert len(accepted) == 1
    finally:
        acceptor.cancel()
        for conn in accepted:
            conn.close()
        listener.close()
        health.close()
        engine.dispose()


@pytest.mark.parametrize("authenticate", [True, False])
async def test_the_command_line_option_reaches_metrics(tmp_path: Path, authenticate: bool) -> None:
    """``collab-server --CollabServer.authenticate_metrics=False``, as a real process."""
    server = ServerProcess(
        tmp_path / "notebooks",
        tmp_path / "data",
        unused_port(),
        tmp_path / "server.log",
        {"CollabServer.authenticate_metrics": authenticate},
    )
    await server.start()
    try:
        client = AsyncHTTPClient()
        metrics = await client.fetch(f"{server.url}/metrics", raise_error=False)
        health = await client.fetch(f"{server.url}/health", raise_error=False)
    finally:
        await server.stop()
    assert metrics.code == (401 if authenticate else 200), metrics.body
    if not authenticate:
        assert value(parse(metrics.body), "collab_rooms_open") == 0
    assert health.code == 200
