"""OpenID Connect login end to end: a browser-like client, the real server, a real provider.

The browser goes to ``/oauth/mock/login``, is redirected to oidc-provider-mock
(which enforces PKCE), submits its authorization form, comes back to
``/oauth/mock/callback`` and ends up with a session cookie; ``/api/user``
says who it is. Attacks tamper with the URLs and cookies in between.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from auth.oauth import GenericOIDCAuthenticator
from tests.auth.test_oauth import Provider, ProviderFactory, providers
from tests.conftest import Server, ServerFactory
from tests.webclient import WebClient

pytestmark = pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning")

OidcServer = Callable[..., Awaitable[tuple[Server, Provider]]]


@pytest.fixture
async def make_provider() -> AsyncIterator[ProviderFactory]:
    async with providers() as start:
        yield start


@pytest.fixture
def oidc_server(make_server: ServerFactory, make_provider: ProviderFactory) -> OidcServer:
    """A server whose login method "mock" is a fresh provider; traits configure the method."""

    async def start(**traits: object) -> tuple[Server, Provider]:
        provider = await make_provider()
        authenticator = GenericOIDCAuthenticator(
            name="mock",
            login_service="Mock IdP",
            issuer=provider.url,
            client_id="collab",
            client_secret="sekrit",
            **traits,
        )
        return await make_server(authenticators=[authenticator]), provider

    return start


ALICE: dict[str, object] = {
    "preferred_username": "alice",
    "name": "Alice Liddell",
    "email": "alice@example.org",
    "email_verified": True,
}


async def go_to_provider(browser: WebClient, provider: Provider, next_url: str = "/x") -> str:
    """Click "log in with Mock IdP"; return the provider's authorization URL."""
    response = await browser.get("/oauth/mock/login?next=" + urllib.parse.quote(next_url, safe=""))
    assert response.code == 302, response.body[:500]
    location = response.headers["Location"]
    assert location.startswith(provider.url + "/oauth2/authorize?")
    return location


async def come_back(
    browser: WebClient, provider: Provider, server: Server, sub: str, claims: dict[str, object]
) -> str:
    """Log in at the provider; return the callback URL it sends the browser to (unfollowed)."""
    authorization_url = await go_to_provider(browser, provider)
    location = await provider.authorize(authorization_url, sub, claims, browser=browser)
    assert location.startswith(server.url + "/oauth/mock/callback?"), location
    return location


async def whoami(browser: WebClient) -> dict[str, object] | None:
    response = await browser.get("/api/user")
    if response.code != 200:
        assert response.code in (401, 403), response.code
        return None
    user: dict[str, object] = json.loads(response.body)
    return user


def with_query(url: str, **changes: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query.update(changes)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def query_of(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


async def test_login_through_the_provider_starts_a_session(oidc_server: OidcServer) -> None:
    server, provider = await oidc_server()
    browser = WebClient(server.url)
    assert await whoami(browser) is None
    callback = await come_back(browser, provider, server, "sub-alice", ALICE)
    response = await browser.get(callback)
    assert response.code == 302 and response.headers["Location"] == "/x"
    assert await whoami(browser) == {"name": "alice", "admin": False}
    # Logging in again with the same identity is the same account.
    again = WebClient(server.url)
    await again.get(await come_back(again, provider, server, "sub-alice", ALICE))
    assert await whoami(again) == {"name": "alice", "admin": False}


async def test_login_page_links_to_the_provider(oidc_server: OidcServer) -> None:
    server, _ = await oidc_server()
    page = await WebClient(server.url).get("/login")
    assert page.code == 200
    assert b"/oauth/mock/login" in page.body and b"Mock IdP" in page.body


async def test_forged_state_is_refused(oidc_server: OidcServer) -> None:
    server, provider = await oidc_server()
    browser = WebClient(server.url)
    callback = await come_back(browser, provider, server, "sub-alice", ALICE)
    response = await browser.get(
        with_query(callback, state="forged-" + query_of(callback)["state"])
    )
    assert response.code == 403 and b"did not start here" in response.body
    assert await whoami(browser) is None


async def test_callback_without_the_login_cookie_is_refused(oidc_server: OidcServer) -> None:
    """Login CSRF: an attacker's own callback URL, opened in the victim's browser."""
    server, provider = await oidc_server()
    attacker = WebClient(server.url)
    callback = await come_back(
        attacker, provider, server, "sub-mallory", {"preferred_username": "mallory"}
    )
    victim = WebClient(server.url)
    response = await victim.get(callback)
    assert response.code == 403
    assert await whoami(victim) is None


async def test_a_callback_works_once_even_with_its_cookie(oidc_server: OidcServer) -> None:
    server, provider = await oidc_server()
    browser = WebClient(server.url)
    callback = await come_back(browser, provider, server, "sub-alice", ALICE)
    stolen_jar = {host: dict(jar) for host, jar in browser.cookies.items()}
    assert (await browser.get(callback)).code == 302
    assert (await browser.get(callback)).code == 403  # same browser, state cookie spent
    replayer = WebClient(server.url)
    replayer.cookies = stolen_jar  # the state cookie too: only the server's memory stops it
    response = await replayer.get(callback)
    assert response.code == 403
    assert b"expired or was already used" in response.body
    assert await whoami(replayer) is None


async def test_a_used_code_cannot_finish_a_new_login(oidc_server: OidcServer) -> None:
    server, provider = await oidc_server()
    browser = WebClient(server.url)
    first = await come_back(browser, provider, server, "sub-alice", ALICE)
    assert (await browser.get(first)).code == 302
    attacker = WebClient(server.url)
    second = await come_back(
        attacker, provider, server, "sub-mallory", {"preferred_username": "mallory"}
    )
    replay = with_query(second, code=query_of(first)["code"])
    response = await attacker.get(replay)
    assert response.code == 403
    assert await whoami(attacker) is None


async def test_a_code_sent_to_another_redirect_uri_is_refused(oidc_server: OidcServer) -> None:
    """The authorization URL's redirect_uri is tampered with; the provider (accepting any
    redirect URI for this client) sends the browser there. Whether the browser lands on
    another host, or on our callback with extra query text, no session is made."""
    server, provider = await oidc_server()
    for tampered_redirect, refusal in (
        # Another host name for this server: the login cookie is not sent there.
        (
            server.url.replace("127.0.0.1", "localhost") + "/oauth/mock/callback",
            b"did not start here",
        ),
        # Our callback with extra query text: the code is bound to that URI, and the
        # exchange (made with the login's own redirect URI) is refused by the provider.
        (server.url + "/oauth/mock/callback?x=1", b"did not accept this login"),
    ):
        browser = WebClient(server.url)
        authorization_url = await go_to_provider(browser, provider)
        tampered = with_query(authorization_url, redirect_uri=tampered_redirect)
        location = await provider.authorize(tampered, "sub-alice", ALICE, browser=browser)
        assert location.startswith(tampered_redirect)
        response = await browser.get(location)
        assert response.code == 403 and refusal in response.body, response.body
        assert await whoami(browser) is None


async def test_provider_error_is_shown_and_logs_nobody_in(oidc_server: OidcServer) -> None:
    server, provider = await oidc_server()
    browser = WebClient(server.url)
    authorization_url = await go_to_provider(browser, provider)
    location = await provider.authorize(authorization_url, "sub-alice", deny=True, browser=browser)
    response = await browser.get(location)
    assert response.code == 403
    assert await whoami(browser) is None


async def test_unverified_email_never_gets_an_existing_account(oidc_server: OidcServer) -> None:
    server, provider = await oidc_server()
    existing = server.services.users.get_or_create("alice", admin=True)
    mallory = {"preferred_username": "alice", "email": "alice@example.org", "email_verified": False}
    browser = WebClient(server.url)
    await browser.get(await come_back(browser, provider, server, "sub-mallory", mallory))
    assert await whoami(browser) == {"name": "alice-2", "admin": False}
    assert server.services.users.get("alice") == existing
    # Her identity stays alice-2 on later logins, whatever name she claims.
    again = WebClient(server.url)
    await again.get(
        await come_back(
            again, provider, server, "sub-mallory", {**mallory, "preferred_username": "bob"}
        )
    )
    assert await whoami(again) == {"name": "alice-2", "admin": False}


async def test_unverified_email_as_username_is_refused(oidc_server: OidcServer) -> None:
    server, provider = await oidc_server(username_claim="email")
    server.services.users.get_or_create("alice@example.org")
    mallory = {
        "preferred_username": "mallory",
        "email": "alice@example.org",
        "email_verified": False,
    }
    browser = WebClient(server.url)
    response = await browser.get(await come_back(browser, provider, server, "sub-mallory", mallory))
    assert response.code == 403 and b"not verified" in response.body
    assert await whoami(browser) is None


async def test_provider_down_at_login_is_a_503(
    make_server: ServerFactory, make_provider: ProviderFactory
) -> None:
    provider = await make_provider()
    await provider.stop()  # down before the server starts: discovery waits for the first login
    authenticator = GenericOIDCAuthenticator(
        name="mock", issuer=provider.url, client_id="collab", client_secret="sekrit"
    )
    server = await make_server(authenticators=[authenticator])
    response = await WebClient(server.url).get("/oauth/mock/login?next=/x")
    assert response.code == 503
    assert b"cannot be reached" in response.body


async def test_provider_down_at_callback_is_a_503(oidc_server: OidcServer) -> None:
    server, provider = await oidc_server()
    browser = WebClient(server.url)
    callback = await come_back(browser, provider, server, "sub-alice", ALICE)
    await provider.stop()
    response = await browser.get(callback)
    assert response.code == 503
    assert b"cannot be reached" in response.body
    assert await whoami(browser) is None


async def test_a_suffixed_account_is_not_made_admin_by_the_name(oidc_server: OidcServer) -> None:
    """admin_users names "alice"; an identity that merely claims that name gets "alice-2",
    and "alice-2" is not an admin."""
    server, provider = await oidc_server(admin_users={"alice"})
    server.services.users.get_or_create("alice")  # e.g. the unix account, or an earlier identity
    mallory = {"preferred_username": "alice", "email": "alice@example.org", "email_verified": False}
    browser = WebClient(server.url)
    await browser.get(await come_back(browser, provider, server, "sub-mallory", mallory))
    assert await whoami(browser) == {"name": "alice-2", "admin": False}


async def test_a_suffixed_account_is_not_let_in_by_the_allow_list(oidc_server: OidcServer) -> None:
    """allowed_users names "alice"; "alice-2" is someone else and is refused."""
    server, provider = await oidc_server(allowed_users={"alice"})
    server.services.users.get_or_create("alice")
    mallory = {"preferred_username": "alice", "email": "alice@example.org", "email_verified": False}
    browser = WebClient(server.url)
    response = await browser.get(await come_back(browser, provider, server, "sub-mallory", mallory))
    assert response.code == 403
    assert await whoami(browser) is None
