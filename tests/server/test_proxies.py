"""Forwarded headers: believed only from trusted proxies, read from the right.

The rule itself (``collab_server.proxies``) is tested as a pure function;
then through a real server, whose requests all come from 127.0.0.1, trusted
or not: what a user sees is the ``Secure`` flag on cookies, the WebSocket
Origin check, and the client address in the access log.
"""

from __future__ import annotations

import logging
from http.cookies import SimpleCookie

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from collab_server.proxies import Client, TrustedProxies, parse_address
from tests.conftest import Server, ServerFactory
from tests.webclient import WebClient
from tests.yclient import YClient

from .test_roles import login_with_session

PROXIES = TrustedProxies(["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"])


def test_headers_from_an_untrusted_peer_are_ignored() -> None:
    client = PROXIES.client(
        "203.0.113.9", "http", "198.51.100.1", forwarded_proto="https", real_ip="198.51.100.2"
    )
    assert client == Client("203.0.113.9", "http")


def test_nobody_is_trusted_by_default() -> None:
    nobody = TrustedProxies()
    assert not nobody
    client = nobody.client("127.0.0.1", "http", "198.51.100.1", "https")
    assert client == Client("127.0.0.1", "http")


def test_the_client_is_the_rightmost_untrusted_hop() -> None:
    # The client wrote "6.6.6.6" itself; 10.1.2.3 is an inner proxy, 192.0.2.1 the peer.
    client = PROXIES.client("192.0.2.1", "http", "6.6.6.6, 198.51.100.7, 10.1.2.3", "https")
    assert client == Client("198.51.100.7", "https")


def test_a_trusted_peer_without_forwarded_headers_is_the_client() -> None:
    assert PROXIES.client("10.0.0.5", "http") == Client("10.0.0.5", "http")


def test_all_hops_trusted_leaves_the_leftmost() -> None:
    assert PROXIES.client("10.0.0.1", "http", "10.9.9.9, 10.0.0.2").address == "10.9.9.9"


def test_garbage_in_the_chain_stops_at_the_last_trusted_hop() -> None:
    for garbage in ("unknown", "", "1.2.3.4:80", "<script>"):
        client = PROXIES.client("10.0.0.1", "http", f"198.51.100.7, {garbage}, 10.0.0.2")
        assert client.address == "10.0.0.2", garbage


def test_several_headers_and_spacing() -> None:
    # Tornado joins repeated headers with commas.
    client = PROXIES.client("10.0.0.1", "http", "198.51.100.7,10.0.0.3 ,  10.0.0.2")
    assert client.address == "198.51.100.7"


def test_ipv6_addresses_brackets_and_mapped_ipv4() -> None:
    assert PROXIES.client("2001:db8::1", "http", "[2001:db9::5]").address == "2001:db9::5"
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
    assert PROXIES.client("::ffff:10.0.0.1", "http", "198.51.100.7").address == "198.51.100.7"
    assert PROXIES.trusts("fe80::1%eth0") is False
    assert parse_address("::ffff:192.0.2.1") == parse_address("192.0.2.1")


def test_real_ip_counts_only_without_forwarded_for() -> None:
    assert PROXIES.client("10.0.0.1", "http", real_ip="198.51.100.7").address == "198.51.100.7"
    client = PROXIES.client("10.0.0.1", "http", "198.51.100.8", real_ip="198.51.100.7")
    assert client.address == "198.51.100.8"


def test_scheme_is_the_last_forwarded_proto_if_http_or_https() -> None:
    assert PROXIES.client("10.0.0.1", "http", None, "HTTPS").scheme == "https"
    assert PROXIES.client("10.0.0.1", "http", None, "http, https").scheme == "https"
    assert PROXIES.client("10.0.0.1", "https", None, "gopher").scheme == "https"
    assert PROXIES.client("10.0.0.1", "https", None, "").scheme == "https"


def test_bad_entries_are_refused() -> None:
    for bad in ("10.0.0.0/33", "localhost", "*", "10.0.0.1, 10.0.0.2"):
        with pytest.raises(ValueError, match="is not an IP address or network"):
            TrustedProxies([bad])


# ---- through a real server (every request's peer is 127.0.0.1) ----------------------------


def cookie_flags(response: HTTPResponse, name: str) -> dict[str, str | bool]:
    for header in response.headers.get_list("Set-Cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        if name in cookie:
            morsel = cookie[name]
            return {k: morsel[k] for k in ("secure", "httponly", "samesite", "path")}
    raise AssertionError(f"no {name} cookie in {response.headers.get_list('Set-Cookie')}")


async def login_page(server: Server, headers: dict[str, str]) -> HTTPResponse:
    return await AsyncHTTPClient().fetch(
        server.url + "/login", headers=headers, raise_error=False, follow_redirects=False
    )


FORWARDED_HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}


async def test_xsrf_cookie_is_secure_only_when_a_trusted_proxy_says_https(
    make_server: ServerFactory,
) -> None:
    plain = await make_server()
    other_proxy = await make_server(trusted_proxies=["10.0.0.0/8"])
    trusted = await make_server(trusted_proxies=["127.0.0.1"])
    for server in (plain, other_proxy):
        flags = cookie_flags(await login_page(server, FORWARDED_HTTPS), "_xsrf")
        assert flags["secure"] == ""
    flags = cookie_flags(await login_page(trusted, FORWARDED_HTTPS), "_xsrf")
    assert flags["secure"] is True and flags["samesite"] == "Lax" and flags["path"] == "/"
    # Plain http through the trusted proxy: not Secure (the browser would drop it).
    flags = cookie_flags(await login_page(trusted, {"X-Forwarded-Proto": "http"}), "_xsrf")
    assert flags["secure"] == ""


async def test_access_log_shows_the_forwarded_client_only_from_a_trusted_peer(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    plain = await make_server()
    trusted = await make_server(trusted_proxies=["127.0.0.0/8"])
    caplog.set_level(logging.INFO, logger="tornado.access")
    await login_page(plain, FORWARDED_HTTPS)
    await login_page(trusted, FORWARDED_HTTPS)
    lines = [r.getMessage() for r in caplog.records if r.name == "tornado.access"]
    assert any("/login (127.0.0.1)" in line for line in lines), lines
    assert any("/login (198.51.100.7)" in line for line in lines), lines


async def test_websocket_origin_is_the_public_https_origin_behind_a_trusted_proxy(
    make_server: ServerFactory,
) -> None:
    trusted = await make_server(trusted_proxies=["127.0.0.1"])
    plain = await make_server()
    for server in (trusted, plain):  # on the same folders
        notebook_id = await server.create_notebook(f"alice/proxied-{server.port}.ipynb", editors=())
        server.services.users.get_or_create("alice")
        browser = WebClient(server.url)
        await login_with_session(server, browser, "alice")
        jar = browser.cookies[f"127.0.0.1:{server.port}"]
        cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
        https_origin = f"https://127.0.0.1:{server.port}"
        headers = {"Cookie": cookie, "Origin": https_origin, "X-Forwarded-Proto": "https"}
        if server is trusted:
            async with YClient(server.ws_url(notebook_id), None, headers=headers) as client:
                assert client.sources() == [""]
            # Behind the https proxy the page's own origin is https; http is another origin.
            headers["Origin"] = server.url
        with pytest.raises(Exception, match="403"):
            await YClient(server.ws_url(notebook_id), None, headers=headers).connect()
