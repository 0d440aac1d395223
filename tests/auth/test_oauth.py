"""OAuth2 / OpenID Connect login against a real local provider (oidc-provider-mock).

A test plays the browser with a plain HTTP client: it opens the URL ``begin``
returns, submits the provider's authorization form with a subject (whose
claims it set at the provider first), reads where the provider redirects,
and hands that callback to the authenticator. The provider is wrapped so it
enforces PKCE (S256) as a strict provider would; the mock alone ignores it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
import threading
import time
import urllib.parse
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import pytest
import werkzeug.serving
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError
from joserfc.jwk import KeySet, OctKey, RSAKey
from tornado import web
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from auth.authenticator import AuthenticatedUser, LoginRefused, LoginUnavailable
from auth.oauth import (
    GenericOIDCAuthenticator,
    GitHubAuthenticator,
    InvalidIdToken,
    OAuthCallback,
    parse_github_user,
    preferred_name,
    subject_name,
    validate_id_token,
)
from auth.users import NAME_PATTERN
from tests.webclient import WebClient

with warnings.catch_warnings():  # it imports authlib's deprecated jose module
    warnings.simplefilter("ignore")
    import oidc_provider_mock

# The provider (authlib's server side) warns about its own use of authlib.
pytestmark = pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning")

REDIRECT = "http://127.0.0.1:9/oauth/oidc/callback"  # never fetched: the test reads the redirect


# ---- a real provider, made strict about PKCE -------------------------------------------


class PkceEnforcer:
    """WSGI middleware: refuse logins without S256 PKCE and codes with a wrong verifier."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self.challenges: dict[str, str] = {}  # code -> code_challenge
        self.lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/oauth2/authorize":
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            challenge = query.get("code_challenge", [""])[0]
            if query.get("code_challenge_method") != ["S256"] or len(challenge) != 43:
                return _answer(start_response, "400 Bad Request", {"error": "invalid_request"})

            def remember_code(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
                for key, value in headers:
                    if key.lower() == "location":
                        query = urllib.parse.urlsplit(value).query
                        for code in urllib.parse.parse_qs(query).get("code", []):
                            with self.lock:
                                self.challenges[code] = challenge
                return start_response(status, headers, *args)

            return self.app(environ, remember_code)
        if path == "/oauth2/token":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            form = urllib.parse.parse_qs(body.decode())
            with self.lock:
                expected = self.challenges.get(form.get("code", [""])[0])
            verifier = form.get("code_verifier", [""])[0]
            if expected is None or create_s256_code_challenge(verifier) != expected:
                return _answer(start_response, "400 Bad Request", {"error": "invalid_grant"})
        return self.app(environ, start_response)


def _answer(start_response: StartResponse, status: str, body: dict[str, str]) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


@dataclass
class Provider:
    """A running oidc-provider-mock; its issuer is its URL."""

    url: str
    server: werkzeug.serving.BaseWSGIServer
    thread: threading.Thread

    async def stop(self) -> None:
        if self.thread.is_alive():
            await asyncio.to_thread(self.server.shutdown)
            await asyncio.to_thread(self.thread.join, 5)
        self.server.server_close()

    async def set_claims(self, sub: str, claims: dict[str, object]) -> None:
        response = await AsyncHTTPClient().fetch(
            f"{self.url}/users/{urllib.parse.quote(sub, safe='')}",
            method="PUT",
            body=json.dumps(claims),
            headers={"Content-Type": "application/json"},
            raise_error=False,
        )
        assert response.code == 204, response.body

    async def authorize(
        self,
        authorization_url: str,
        sub: str,
        claims: dict[str, object] | None = None,
        deny: bool = False,
        browser: WebClient | None = None,
    ) -> str:
        """Act as the person at the provider's form; return where the provider redirects."""
        if claims is not None:
            await self.set_claims(sub, claims)
        browser = browser or WebClient(self.url)
        page = await browser.get(authorization_url)
        assert page.code == 200 and b'name="sub"' in page.body, page.body[:500]
        form = {"action": "deny"} if deny else {"sub": sub}
        answer = await browser.post(authorization_url, form=form, xsrf=False)
        assert answer.code == 302, answer.body[:500]
        return answer.headers["Location"]


ProviderFactory = Callable[..., Awaitable[Provider]]


@contextlib.asynccontextmanager
async def providers() -> AsyncIterator[ProviderFactory]:
    """Start providers on 127.0.0.1 (``port=0``: any free one); all stopped on exit."""
    running: list[Provider] = []
    werkzeug_log = logging.getLogger("werkzeug")
    level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)  # not a line per request

    async def start(enforce_pkce: bool = True, port: int = 0) -> Provider:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            app: WSGIApplication = oidc_provider_mock.app()
        if enforce_pkce:
            app = PkceEnforcer(app)
        server = werkzeug.serving.make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        provider = Provider(f"http://127.0.0.1:{server.server_port}", server, thread)
        running.append(provider)
        return provider

    try:
        yield start
    finally:
        for provider in running:
            await provider.stop()
        werkzeug_log.setLevel(level)


@pytest.fixture
async def make_provider() -> AsyncIterator[ProviderFactory]:
    async with providers() as start:
        yield start


@pytest.fixture
async def provider(make_provider: ProviderFactory) -> Provider:
    return await make_provider()


AuthenticatorFactory = Callable[..., Awaitable[GenericOIDCAuthenticator]]


@pytest.fixture
async def make_oidc() -> AsyncIterator[AuthenticatorFactory]:
    """Started GenericOIDCAuthenticators for a provider; all stopped at the end."""
    made: list[GenericOIDCAuthenticator] = []

    async def make(provider: Provider | str, **traits: Any) -> GenericOIDCAuthenticator:
        issuer = provider if isinstance(provider, str) else provider.url
        authenticator = GenericOIDCAuthenticator(
            issuer=issuer, client_id="collab", client_secret="sekrit", **traits
        )
        await authenticator.start()
        made.append(authenticator)
        return authenticator

    yield make
    for authenticator in made:
        await authenticator.stop()


def callback_from(location: str) -> OAuthCallback:
    """The callback a browser brings to the URL the provider redirected it to."""
    parts = urllib.parse.urlsplit(location)
    query = dict(urllib.parse.parse_qsl(parts.query))
    return OAuthCallback(
        code=query.get("code", ""),
        state=query.get("state", ""),
        error=query.get("error", ""),
        redirect_uri=urllib.parse.urlunsplit(parts._replace(query="", fragment="")),
    )


async def login(
    authenticator: GenericOIDCAuthenticator,
    provider: Provider,
    sub: str,
    claims: dict[str, object] | None = None,
) -> tuple[OAuthCallback, AuthenticatedUser]:
    url, _ = await authenticator.begin(REDIRECT)
    callback = callback_from(await provider.authorize(url, sub, claims))
    return callback, await authenticator.get_authenticated_user(callback)


ALICE = {
    "preferred_username": "Alice",
    "name": "Alice Liddell",
    "email": "alice@example.org",
    "email_verified": True,
}


# ---- the flow --------------------------------------------------------------------------


async def test_login_yields_the_providers_identity(
    provider: Provider, make_oidc: AuthenticatorFactory
) -> None:
    authenticator = await make_oidc(provider)
    _, user = await login(authenticator, provider, "sub-alice-1", ALICE)
    assert user == AuthenticatedUser(
        name="alice",
        provider="oauth",
        admin=False,
        issuer=provider.url,
        subject="sub-alice-1",
        display_name="Alice Liddell",
    )


async def test_authorization_url_asks_for_code_with_pkce_nonce_and_exact_redirect(
    provider: Provider, make_oidc: AuthenticatorFactory
) -> None:
    authenticator = await make_oidc(provider)
    url, state = await authenticator.begin(REDIRECT)
    other_url, other_state = await authenticator.begin(REDIRECT)
    parts = urllib.parse.urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{provider.url}/oauth2/authorize"
    query = dict(urllib.parse.parse_qsl(parts.query))
    assert query["response_type"] == "code"
    assert query["client_id"] == "collab"
    assert query["redirect_uri"] == REDIRECT
    assert query["scope"] == "openid profile email"
    assert query["state"] == state and len(state) >= 32
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["nonce"]) >= 32
    other = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(other_url).query))
    assert other_state != state
    assert other["nonce"] != query["nonce"]
    assert other["code_challenge"] != query["code_challenge"]


async def test_unknown_or_missing_state_is_refused(
    provider: Provider, make_oidc: AuthenticatorFactory
) -> None:
    authenticator = await make_oidc(provider)
    url, state = await authenticator.begin(REDIRECT)
    callback = callback_from(await provider.authorize(url, "sub-alice-1", ALICE))
    for forged in ("forged", "", state + "x"):
        with pytest.raises(LoginRefused, match="expired or was already used"):
            await authenticator.get_authenticated_user(
                OAuthCallback(callback.code, forged, "", callback.redirect_uri)
            )
    # None of that used up the real login.
    assert (await authenticator.get_authenticated_user(callback)).subject == "sub-alice-1"


async def test_a_callback_works_once(provider: Provider, make_oidc: AuthenticatorFactory) -> None:
    authenticator = await make_oidc(provider)
    callback, user = await login(authenticator, provider, "sub-alice-1", ALICE)
    assert user.name == "alice"
    with pytest.raises(LoginRefused, match="expired or was already used"):
        await authenticator.get_authenticated_user(callback)


async def test_a_failed_callback_still_uses_up_its_state(
    provider: Provider, make_oidc: AuthenticatorFactory
) -> None:
    authenticator = await make_oidc(provider)
    url, _ = await authenticator.begin(REDIRECT)
    callback = callback_from(await provider.authorize(url, "sub-alice-1", ALICE))
    elsewhere = OAuthCallback(callback.code, callback.state, "", "http://127.0.0.1:9/elsewhere")
    with pytest.raises(LoginRefused, match="wrong address"):
        await authenticator.get_authenticated_user(elsewhere)
    with pytest.raises(LoginRefused, match="expired or was already used"):
        await authenticator.get_authenticated_user(callback)


async def test_a_used_code_cannot_finish_a_new_login(
    provider: Provider, make_oidc: AuthenticatorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    authenticator = await make_oidc(provider)
    used, _ = await login(authenticator, provider, "sub-alice-1", ALICE)
    _, fresh_state = await authenticator.begin(REDIRECT)
    replay = OAuthCallback(used.code, fresh_state, "", REDIRECT)
    with pytest.raises(LoginRefused, match="did not accept"):
        await authenticator.get_authenticated_user(replay)
    assert "token request refused" in caplog.text


@pytest.mark.parametrize("enforce_pkce", [True, False], ids=["pkce-provider", "lax-provider"])
async def test_a_code_from_another_login_is_refused(
    make_provider: ProviderFactory,
    make_oidc: AuthenticatorFactory,
    caplog: pytest.LogCaptureFixture,
    enforce_pkce: bool,
) -> None:
    """Code injection: a code issued for login A, brought back with login B's state.

    A strict provider refuses it for the PKCE verifier; a provider that
    ignores PKCE hands out an ID token, refused for its nonce.
    """
    provider = await make_provider(enforce_pkce=enforce_pkce)
    authenticator = await make_oidc(provider)
    url_a, _ = await authenticator.begin(REDIRECT)
    _, state_b = await authenticator.begin(REDIRECT)
    stolen = callback_from(
        await provider.authorize(url_a, "sub-mallory", {"preferred_username": "mallory"})
    )
    with pytest.raises(LoginRefused):
        await authenticator.get_authenticated_user(
            OAuthCallback(stolen.code, state_b, "", REDIRECT)
        )
    if enforce_pkce:
        assert "token request refused" in caplog.text
    else:
        assert "ID token refused" in caplog.text and "nonce" in caplog.text


async def test_redirect_uri_must_be_the_one_the_login_began_with(
    provider: Provider, make_oidc: AuthenticatorFactory
) -> None:
    authenticator = await make_oidc(provider)
    for received in (REDIRECT + "/", REDIRECT + "?x=1", REDIRECT.replace("127.0.0.1", "localhost")):
        url, _ = await authenticator.begin(REDIRECT)
        callback = callback_from(await provider.authorize(url, "sub-alice-1", ALICE))
        with pytest.raises(LoginRefused, match="wrong address"):
            await authenticator.get_authenticated_user(
                OAuthCallback(callback.code, callback.state, "", received)
            )


async def test_a_code_sent_to_another_redirect_uri_is_refused_by_the_exchange(
    provider: Provider, make_oidc: AuthenticatorFactory
) -> None:
    """The authorization URL's redirect_uri swapped for an attacker's: the provider
    (which accepts any redirect URI for this client) sends the code there; the
    attacker brings it to the real callback, and the token exchange, made with
    the login's own redirect URI, is refused."""
    authenticator = await make_oidc(provider)
    url, _ = await authenticator.begin(REDIRECT)
    tampered = url.replace(
        urllib.parse.quote(REDIRECT, safe=""), urllib.parse.quote("http://evil.test/cb", safe="")
    )
    assert tampered != url
    location = await provider.authorize(tampered, "sub-alice-1", ALICE)
    assert location.startswith("http://evil.test/cb?")
    stolen = callback_from(location)
    with pytest.raises(LoginRefused, match="did not accept"):
        await authenticator.get_authenticated_user(
            OAuthCallback(stolen.code, stolen.state, "", REDIRECT)
        )


async def test_provider_error_is_refused_with_a_clear_message(
    provider: Provider, make_oidc: AuthenticatorFactory
) -> None:
    authenticator = await make_oidc(provider)
    url, state = await authenticator.begin(REDIRECT)
    denied = callback_from(await provider.authorize(url, "sub-alice-1", deny=True))
    assert denied.error == "access_denied" and not denied.code
    with pytest.raises(LoginRefused, match="cancelled or refused"):
        await authenticator.get_authenticated_user(denied)
    # An error naming a pending login uses it up; odd error codes are not echoed.
    with pytest.raises(LoginRefused) as refused:
        await authenticator.get_authenticated_user(
            OAuthCallback("", state, "<script>alert(1)</script>", REDIRECT)
        )
    assert "script" not in str(refused.value)
    with pytest.raises(LoginRefused, match="expired or was already used"):
        await authenticator.get_authenticated_user(OAuthCallback("code", state, "", REDIRECT))


async def test_expired_login_is_refused(
    provider: Provider, make_oidc: AuthenticatorFactory
) -> None:
    authenticator = await make_oidc(provider, login_timeout=0)
    url, _ = await authenticator.begin(REDIRECT)
    callback = callback_from(await provider.authorize(url, "sub-alice-1", ALICE))
    with pytest.raises(LoginRefused, match="expired"):
        await authenticator.get_authenticated_user(callback)


async def test_pending_logins_are_bounded_oldest_forgotten_first(
    provider: Provider, make_oidc: AuthenticatorFactory
) -> None:
    authenticator = await make_oidc(provider, max_pending_logins=2)
    urls = [(await authenticator.begin(REDIRECT))[0] for _ in range(3)]
    callbacks = [callback_from(await provider.authorize(u, "sub-alice-1", ALICE)) for u in urls]
    with pytest.raises(LoginRefused, match="expired or was already used"):
        await authenticator.get_authenticated_user(callbacks[0])
    for callback in callbacks[1:]:
        assert (await authenticator.get_authenticated_user(callback)).name == "alice"


# ---- names and emails ------------------------------------------------------------------


@pytest.mark.parametrize(
    "email_verified", [False, None, "true"], ids=["false", "missing", "string"]
)
async def test_unverified_email_is_never_the_name(
    provider: Provider, make_oidc: AuthenticatorFactory, email_verified: object
) -> None:
    authenticator = await make_oidc(provider, username_claim="email")
    claims: dict[str, object] = {"preferred_username": "bob", "email": "alice@example.org"}
    if email_verified is not None:
        claims["email_verified"] = email_verified
    with pytest.raises(LoginRefused, match="not verified"):
        await login(authenticator, provider, "sub-mallory", claims)


async def test_verified_email_can_be_the_name(
    provider: Provider, make_oidc: AuthenticatorFactory
) -> None:
    authenticator = await make_oidc(provider, username_claim="email")
    _, user = await login(
        authenticator, provider, "sub-alice-1", {**ALICE, "email": "Alice@Example.org"}
    )
    assert (user.name, user.subject) == ("alice@example.org", "sub-alice-1")


async def test_unverified_email_beside_a_preferred_name_keys_nothing(
    provider: Provider, make_oidc: AuthenticatorFactory
) -> None:
    """With the default username claim an unverified email is ignored; identity is (iss, sub)."""
    authenticator = await make_oidc(provider)
    claims: dict[str, object] = {
        "preferred_username": "mallory",
        "email": "alice@example.org",
        "email_verified": False,
    }
    _, user = await login(authenticator, provider, "sub-mallory", claims)
    assert (user.name, user.issuer, user.subject) == ("mallory", provider.url, "sub-mallory")


@pytest.mark.parametrize(
    ("email", "verified", "allowed"),
    [
        ("alice@example.org", True, True),
        ("alice@EXAMPLE.org", True, True),
        ("alice@example.org", False, False),
        ("alice@evil.org", True, False),
        ("alice@example.org.evil.org", True, False),
        ("alice@sub.example.org", True, False),
        ("example.org", True, False),
    ],
)
async def test_allowed_domains_take_only_verified_emails(
    provider: Provider, make_oidc: AuthenticatorFactory, email: str, verified: bool, allowed: bool
) -> None:
    authenticator = await make_oidc(provider, allowed_domains={"example.org"})
    claims: dict[str, object] = {
        "preferred_username": "alice",
        "email": email,
        "email_verified": verified,
    }
    if allowed:
        _, user = await login(authenticator, provider, "sub-alice-1", claims)
        assert user.name == "alice"
    else:
        with pytest.raises(LoginRefused):
            await login(authenticator, provider, "sub-alice-1", claims)


async def test_unusable_preferred_name_falls_back_to_the_subject(
    provider: Provider, make_oidc: AuthenticatorFactory
) -> None:
    authenticator = await make_oidc(provider)
    for claims in ({"preferred_username": "李"}, {"preferred_username": 42}, {}):
        _, user = await login(authenticator, provider, "sub-nameless", claims)
        assert user.name == subject_name(provider.url, "sub-nameless")
        assert NAME_PATTERN.match(user.name)


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Alice", "alice"),
        ("José Núñez", "jose-nunez"),
        ("../../etc/passwd", "etc-passwd"),
        (".hidden", "hidden"),
        ("a" * 100, "a" * 64),
        ("李", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_preferred_names_become_valid_names(raw: object, name: str) -> None:
    assert preferred_name(raw) == name
    assert name == "" or NAME_PATTERN.match(name)


async def test_groups_make_admins_and_limit_who_may_log_in(
    provider: Provider, make_oidc: AuthenticatorFactory
) -> None:
    authenticator = await make_oidc(provider, admin_groups={"staff"}, allowed_groups={"students"})
    _, admin = await login(
        authenticator, provider, "sub-t", {"preferred_username": "t", "groups": ["staff"]}
    )
    _, student = await login(
        authenticator, provider, "sub-s", {"preferred_username": "s", "groups": ["students"]}
    )
    assert admin.admin and not student.admin
    with pytest.raises(LoginRefused, match="not in a group"):
        await login(
            authenticator, provider, "sub-x", {"preferred_username": "x", "groups": "students"}
        )


async def test_admin_and_allow_lists_apply_to_the_normalized_name(
    provider: Provider, make_oidc: AuthenticatorFactory
) -> None:
    authenticator = await make_oidc(provider, allowed_users={"alice"}, admin_users={"alice"})
    _, user = await login(authenticator, provider, "sub-alice-1", ALICE)
    assert user.admin
    with pytest.raises(LoginRefused, match="may not log in here"):
        await login(authenticator, provider, "sub-bob", {"preferred_username": "bob"})


# ---- a provider that is down -----------------------------------------------------------


async def test_provider_down_at_start_is_retried_at_the_first_login(
    make_provider: ProviderFactory, make_oidc: AuthenticatorFactory
) -> None:
    sock, port = bind_unused_port()
    sock.close()  # nothing listens there: connections are refused at once
    authenticator = await make_oidc(f"http://127.0.0.1:{port}")  # start() does not fail
    with pytest.raises(LoginUnavailable) as unavailable:
        await authenticator.begin(REDIRECT)
    assert unavailable.value.status == 503
    provider = await make_provider(port=port)
    _, user = await login(authenticator, provider, "sub-alice-1", ALICE)
    assert user.name == "alice"


async def test_provider_down_during_the_exchange_is_unavailable_not_refused(
    provider: Provider, make_oidc: AuthenticatorFactory
) -> None:
    authenticator = await make_oidc(provider)
    url, _ = await authenticator.begin(REDIRECT)
    callback = callback_from(await provider.authorize(url, "sub-alice-1", ALICE))
    await provider.stop()
    with pytest.raises(LoginUnavailable, match="cannot be reached"):
        await authenticator.get_authenticated_user(callback)


def test_plain_http_provider_off_loopback_is_refused() -> None:
    authenticator = GenericOIDCAuthenticator(issuer="http://idp.example.org", client_id="c")

    async def begin() -> None:
        await authenticator.begin(REDIRECT)

    with pytest.raises(LoginUnavailable, match="misconfigured"):
        asyncio.run(begin())


def test_name_must_be_a_url_slug() -> None:
    assert GenericOIDCAuthenticator(name="corp-sso").name == "corp-sso"
    for bad in ("", "Corp", "a/b", "../x", "a b"):
        with pytest.raises(Exception, match="slug"):
            GenericOIDCAuthenticator(name=bad)


# ---- ID token checks, unit level -------------------------------------------------------


@pytest.fixture(scope="module")
def signing_key() -> RSAKey:
    return RSAKey.generate_key(2048, auto_kid=True)


def _id_token(key: Any, header: dict[str, Any] | None = None, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": "https://idp.test",
        "aud": "collab",
        "sub": "s1",
        "iat": now,
        "exp": now + 300,
        "nonce": "n1",
        **overrides,
    }
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(header or {"alg": "RS256", "kid": key.kid}, claims, key)


def _check(token: str, key: RSAKey) -> dict[str, Any]:
    keys = KeySet.import_key_set({"keys": [key.as_dict(private=False)]})
    return validate_id_token(token, keys, issuer="https://idp.test", client_id="collab", nonce="n1")


def test_id_token_accepted_when_everything_matches(signing_key: RSAKey) -> None:
    assert _check(_id_token(signing_key), signing_key)["sub"] == "s1"
    assert _check(_id_token(signing_key, aud=["collab"]), signing_key)["sub"] == "s1"
    assert _check(_id_token(signing_key, aud=["collab", "x"], azp="collab"), signing_key)


@pytest.mark.parametrize(
    "overrides",
    [
        {"iss": "https://evil.test"},
        {"aud": "someone-else"},
        {"aud": ["someone-else", "x"]},
        {"aud": ["collab", "x"]},  # several audiences and no azp
        {"azp": "someone-else"},
        {"exp": 1_000_000},
        {"iat": 4_000_000_000},
        {"nonce": "n2"},
        {"nonce": None},
        {"sub": None},
        {"exp": None},
    ],
)
def test_id_token_with_wrong_claims_is_refused(
    signing_key: RSAKey, overrides: dict[str, Any]
) -> None:
    with pytest.raises(InvalidIdToken):
        _check(_id_token(signing_key, **overrides), signing_key)


def test_id_token_signed_by_another_key_or_no_key_is_refused(signing_key: RSAKey) -> None:
    impostor = RSAKey.generate_key(2048)
    forged = _id_token(impostor, header={"alg": "RS256", "kid": signing_key.kid})
    with pytest.raises(InvalidIdToken):
        _check(forged, signing_key)
    # HMAC "signed" with a key the attacker chose, and alg "none": public-key algorithms only.
    hmac = _id_token(OctKey.generate_key(256), header={"alg": "HS256", "kid": signing_key.kid})
    with pytest.raises(InvalidIdToken):
        _check(hmac, signing_key)
    header, payload, _ = _id_token(signing_key).split(".")
    unsigned = ".".join([_b64url({"alg": "none"}), payload, ""])
    with pytest.raises(InvalidIdToken):
        _check(unsigned, signing_key)
    with pytest.raises(InvalidKeyIdError):  # unknown kid: the caller refetches the key set
        _check(_id_token(signing_key, header={"alg": "RS256", "kid": "rotated"}), signing_key)


def _b64url(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


# ---- GitHub, against a small local fake of its endpoints -------------------------------


class FakeGitHub:
    """GitHub's token endpoint (enforcing PKCE, single-use codes) and the two API calls used."""

    def __init__(self) -> None:
        self.codes: dict[str, tuple[str, str]] = {}  # code -> (code_challenge, redirect_uri)
        self.orgs = {"good-org": "active", "pending-org": "pending"}
        fake = self

        class Token(web.RequestHandler):
            def post(self) -> None:
                issued = fake.codes.pop(self.get_body_argument("code", ""), None)
                ok = (
                    issued is not None
                    and self.get_body_argument("client_id", "") == "gh-client"
                    and self.get_body_argument("client_secret", "") == "gh-secret"
                    and issued[1] == self.get_body_argument("redirect_uri", "")
                    and create_s256_code_challenge(self.get_body_argument("code_verifier", ""))
                    == issued[0]
                )
                # GitHub answers 200 even for a bad code.
                self.write(
                    {"access_token": "gho_x", "token_type": "bearer"}
                    if ok
                    else {"error": "bad_verification_code"}
                )

        class User(web.RequestHandler):
            def get(self) -> None:
                if self.request.headers.get("Authorization") != "Bearer gho_x":
                    self.set_status(401)
                    self.write({"message": "Bad credentials"})
                    return
                self.write({"id": 583231, "login": "Octo-Cat", "name": "The Octocat"})

        class Membership(web.RequestHandler):
            def get(self, org: str) -> None:
                if org in fake.orgs and self.request.headers.get("Authorization") == "Bearer gho_x":
                    self.write({"state": fake.orgs[org], "role": "member"})
                else:
                    self.set_status(404)
                    self.write({"message": "Not Found"})

        self.app = web.Application(
            [
                (r"/login/oauth/access_token", Token),
                (r"/api/user", User),
                (r"/api/user/memberships/orgs/([^/]+)", Membership),
            ]
        )


@pytest.fixture
async def github() -> AsyncIterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()
    sock, port = bind_unused_port()
    server = HTTPServer(fake.app)
    server.add_sockets([sock])
    yield fake, f"http://127.0.0.1:{port}"
    server.stop()
    await server.close_all_connections()


async def _github_login(
    fake: FakeGitHub, url: str, **traits: Any
) -> tuple[dict[str, str], AuthenticatedUser]:
    authenticator = GitHubAuthenticator(
        client_id="gh-client",
        client_secret="gh-secret",
        github_url=url,
        api_url=f"{url}/api",
        **traits,
    )
    await authenticator.start()
    authorization_url, state = await authenticator.begin(REDIRECT)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(authorization_url).query))
    fake.codes["code-1"] = (query["code_challenge"], query["redirect_uri"])  # the person said yes
    callback = OAuthCallback("code-1", state, "", REDIRECT)
    return query, await authenticator.get_authenticated_user(callback)


async def test_github_login_keys_by_account_id(github: tuple[FakeGitHub, str]) -> None:
    fake, url = github
    query, user = await _github_login(fake, url)
    assert (query["client_id"], query["scope"], query["code_challenge_method"]) == (
        "gh-client",
        "read:user",
        "S256",
    )
    assert user == AuthenticatedUser(
        name="octo-cat", provider="oauth", issuer=url, subject="583231", display_name="The Octocat"
    )


async def test_github_organizations_limit_who_may_log_in(github: tuple[FakeGitHub, str]) -> None:
    fake, url = github
    query, user = await _github_login(fake, url, allowed_organizations={"nope", "good-org"})
    assert query["scope"] == "read:user read:org" and user.subject == "583231"
    for orgs in ({"nope"}, {"pending-org"}):
        with pytest.raises(LoginRefused, match="organization"):
            await _github_login(fake, url, allowed_organizations=orgs)


async def test_github_bad_code_and_state_are_refused(github: tuple[FakeGitHub, str]) -> None:
    fake, url = github
    authenticator = GitHubAuthenticator(
        client_id="gh-client", client_secret="gh-secret", github_url=url, api_url=f"{url}/api"
    )
    _, state = await authenticator.begin(REDIRECT)
    with pytest.raises(LoginRefused, match="did not accept"):  # never issued
        await authenticator.get_authenticated_user(OAuthCallback("code-x", state, "", REDIRECT))
    with pytest.raises(LoginRefused, match="expired or was already used"):
        await authenticator.get_authenticated_user(OAuthCallback("code-x", state, "", REDIRECT))


def test_github_user_parsing() -> None:
    identity = parse_github_user({"id": 1, "login": "a", "name": None})
    assert (identity.subject, identity.login, identity.display_name) == ("1", "a", "a")
    for bad in ({"id": "1", "login": "a"}, {"id": True, "login": "a"}, {"login": "a"}, [], None):
        with pytest.raises(ValueError):
            parse_github_user(bad)
