"""PAM login end to end: a real server, a browser-like client, real PAM, real unix users."""

from __future__ import annotations

import asyncio
import collections
import json
import urllib.parse
from collections.abc import Iterator

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from collab_server.handlers.base import SESSION_COOKIE
from tests.auth.unix_users import CountingPAM, UnixUsers, throwaway_unix_users
from tests.conftest import Server, ServerFactory
from tests.webclient import WebClient


@pytest.fixture
def unix_users() -> Iterator[UnixUsers]:
    yield from throwaway_unix_users()


async def pam_server(make_server: ServerFactory, **traits: object) -> tuple[Server, CountingPAM]:
    authenticator = CountingPAM(**traits)
    server = await make_server(authenticators=[authenticator])
    return server, authenticator


async def whoami(client: WebClient) -> HTTPResponse:
    return await client.get("/api/user")


async def wait_for_calls(authenticator: CountingPAM, username: str, count: int) -> None:
    async with asyncio.timeout(10):
        while authenticator.calls[username] < count:
            await asyncio.sleep(0.005)


async def test_right_password_logs_in(unix_users: UnixUsers, make_server: ServerFactory) -> None:
    name, password = unix_users.add_user()
    server, _ = await pam_server(make_server)
    client = WebClient(server.url)

    response = await client.login(name, password, "/tree")

    assert response.code == 302, response.body
    assert response.headers["Location"] == "/tree"
    assert client.cookie(SESSION_COOKIE)
    me = await whoami(client)
    assert me.code == 200
    assert json.loads(me.body) == {"name": name, "admin": False}


async def test_wrong_password_is_refused_without_a_session(
    unix_users: UnixUsers, make_server: ServerFactory
) -> None:
    name, password = unix_users.add_user()
    server, authenticator = await pam_server(make_server)
    client = WebClient(server.url)

    response = await client.login(name, "not " + password)

    assert response.code == 403
    assert b"Invalid username or password." in response.body
    assert b'name="password"' in response.body  # the login form again
    assert client.cookie(SESSION_COOKIE) is None
    assert (await whoami(client)).code in (401, 403)
    assert authenticator.calls[name] == 1


async def test_password_flood_gets_429_while_the_real_user_logs_in(
    unix_users: UnixUsers, make_server: ServerFactory
) -> None:
    """1,000 wrong passwords from 127.0.0.2, all at once, with the default limits.

    While the attacker's first guess is held inside PAM, the real user (from
    127.0.0.1) and another user log in: neither waits for it. Almost every
    guess is answered 429 with a Retry-After; only a couple reach PAM.
    """
    victim, victim_pw = unix_users.add_user()
    bystander, bystander_pw = unix_users.add_user()
    server, authenticator = await pam_server(make_server)

    # The attacker's browser: its own connection pool, so the real user's never queues behind it.
    attacker = WebClient(server.url, network_interface="127.0.0.2")
    await attacker.get("/login")
    xsrf = attacker.cookie("_xsrf")
    assert xsrf
    attacker_http = AsyncHTTPClient(force_instance=True, max_clients=200)

    async def guess(i: int) -> HTTPResponse:
        form = {"username": victim, "password": f"guess-{i}", "next": "/", "_xsrf": xsrf}
        return await attacker_http.fetch(
            server.url + "/login",
            method="POST",
            body=urllib.parse.urlencode(form),
            headers={"Cookie": f"_xsrf={xsrf}"},
            network_interface="127.0.0.2",
            follow_redirects=False,
            raise_error=False,
        )

    authenticator.hold("guess-")
    try:
        flood = asyncio.gather(*(guess(i) for i in range(1000)))
        await wait_for_calls(authenticator, victim, 1)

        real = WebClient(server.url, network_interface="127.0.0.1")
        assert (await real.login(victim, victim_pw)).code == 302
        other = WebClient(server.url, network_interface="127.0.0.1")
        assert (await other.login(bystander, bystander_pw)).code == 302
        # Both are done while the attacker's first guess is still held in PAM.
        assert authenticator.finished[victim] == 1

        authenticator.release()
        responses = await flood
    finally:
        authenticator.release()
        attacker_http.close()

    codes = collections.Counter(r.code for r in responses)
    assert set(codes) <= {403, 429}, codes
    assert codes[429] >= 995 and codes[403] == authenticator.calls[victim] - 1 <= 2, codes
    for response in responses:
        assert "collab-session" not in response.headers.get("Set-Cookie", "")
        if response.code == 429:
            assert int(response.headers["Retry-After"]) >= 1
            assert b"Too many" in response.body
    assert json.loads((await whoami(real)).body)["name"] == victim
    assert json.loads((await whoami(other)).body)["name"] == bystander


async def test_ten_megabyte_username_is_refused_at_once(
    unix_users: UnixUsers, make_server: ServerFactory
) -> None:
    name, password = unix_users.add_user()
    server, authenticator = await pam_server(make_server)
    client = WebClient(server.url)

    response = await client.login("a" * 10_000_000, password)

    assert response.code == 403
    assert b"Invalid username or password." in response.body
    assert b"a" * 300 not in response.body  # the name is not echoed back whole
    assert client.cookie(SESSION_COOKIE) is None
    assert authenticator.total_calls == 0
    assert (await client.login(name, password)).code == 302  # the server is fine
