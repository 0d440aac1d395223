"""Logging in through an OAuth2 / OpenID Connect provider: generic OIDC and GitHub.

The flow is the authorization code flow with PKCE (S256). The web app calls
``begin(redirect_uri)`` and sends the browser to the URL it returns; the
provider sends the browser back to ``redirect_uri`` with ``code`` and
``state``; the web app hands those to ``get_authenticated_user`` as an
:class:`OAuthCallback`, which ends here in ``authenticate``.

Pending logins (state -> nonce, PKCE verifier, redirect URI) live in this
object's memory for ``login_timeout`` seconds and are forgotten on the first
callback that names them, whether the login then succeeds or not: a state
works once. A restart forgets pending logins; people just log in again.
Identities are keyed by (issuer, subject); the name is only a preferred name.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import time
import unicodedata
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from authlib.common.security import is_secure_transport
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Bool, Float, Int, List, Set, TraitError, Unicode, default, validate

from .authenticator import AuthenticatedUser, Authenticator, LoginRefused, LoginUnavailable
from .users import NAME_PATTERN

USER_AGENT = "collab-server"
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
# Algorithms an ID token may be signed with: public-key only, never "none" or HMAC.
ID_TOKEN_ALGORITHMS = frozenset(
    "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA".split()
)
_ERROR_CODE = re.compile(r"^[a-z_]{1,64}$")
_NOT_NAME_CHARS = re.compile(r"[^a-z0-9_.@-]+")


@dataclass(frozen=True, slots=True)
class OAuthCallback:
    """What the provider sent the browser back with, as the callback route received it.

    ``code``, ``state`` and ``error`` are the query parameters ("" when
    absent); ``redirect_uri`` is the redirect URI of the route that received
    the callback, computed exactly as it was for ``begin`` (the configured
    ``callback_url``, else the server's URL + ``/oauth/<name>/callback``).
    """

    code: str
    state: str
    error: str
    redirect_uri: str


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """A login sent to the provider and not yet back: what its callback is checked against."""

    nonce: str
    code_verifier: str
    redirect_uri: str
    expires_at: float  # time.monotonic()


class InvalidIdToken(ValueError):
    """An ID token that failed verification; ``str()`` says why, for the log only."""


def validate_id_token(
    id_token: str,
    keys: KeySet,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    algorithms: Sequence[str] = ("RS256",),
    leeway: int = 60,
) -> dict[str, Any]:
    """Check an ID token's signature against ``keys`` and its claims; return the claims.

    Checks: signature by one of ``algorithms`` (public-key algorithms only;
    others are ignored), ``iss`` equal to ``issuer``, ``aud`` containing
    ``client_id`` (and ``azp`` equal to it when present), ``exp``/``iat``/``nbf``
    with ``leeway`` seconds of clock skew, ``sub`` present, ``nonce`` equal to
    ``nonce``. Raises InvalidIdToken (joserfc's InvalidKeyIdError when no key
    has the token's ``kid``, so the caller can refetch the key set).
    """
    allowed = [a for a in algorithms if a in ID_TOKEN_ALGORITHMS] or ["RS256"]
    try:
        token = jwt.decode(id_token, keys, algorithms=allowed)
    except InvalidKeyIdError:
        raise
    except (JoseError, ValueError, KeyError) as e:
        raise InvalidIdToken(f"bad signature or format: {e!r}") from e
    claims = token.claims
    registry = jwt.JWTClaimsRegistry(
        leeway=leeway,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except JoseError as e:
        raise InvalidIdToken(f"claims: {e!r}") from e
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != client_id:
        raise InvalidIdToken(f"azp {azp!r} is not this client")
    return claims


def preferred_name(value: object) -> str:
    """A valid user name made from a provider's preferred name, or "" if nothing usable is left.

    Lowercases, folds accents to ASCII, turns runs of other characters into
    "-", drops leading characters a name cannot start with and cuts to 64.
    """
    if not isinstance(value, str):
        return ""
    text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().lower()
    text = _NOT_NAME_CHARS.sub("-", text.strip()).lstrip(".@-")[:64]
    return text if NAME_PATTERN.match(text) else ""


def subject_name(issuer: str, subject: str) -> str:
    """The name of an identity whose preferred name is unusable: stable, and never a real name."""
    digest = hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()
    return f"user-{digest[:12]}"


def _display_name(value: object) -> str:
    if not isinstance(value, str):
        return ""
    return "".join(c for c in value if c.isprintable()).strip()[:128]


class OAuthenticator(Authenticator[OAuthCallback]):
    """Base of the OAuth login methods: pending logins, PKCE, the code exchange, HTTP.

    Subclasses implement ``authorization_endpoint`` and ``identify`` and may
    add authorization parameters with ``extra_authorization_params``.
    """

    kind = "oauth"
    name = Unicode(
        "",
        config=True,
        help="URL slug of this login method: its routes are /oauth/<name>/login and "
        "/oauth/<name>/callback. Lowercase letters, digits and '-'.",
    )
    callback_url = Unicode(
        "",
        config=True,
        help="The redirect URI registered with the provider, used exactly as written "
        "(set it when the server is behind a proxy). Empty: the URL the server was "
        "reached at, followed by /oauth/<name>/callback.",
    )
    client_id = Unicode("", config=True, help="The client ID the provider gave this server.")
    client_secret = Unicode(
        "", config=True, help="The client secret the provider gave this server."
    )
    scopes = List(Unicode(), config=True, help="Scopes asked of the provider.")
    login_timeout = Float(
        600.0,
        config=True,
        help="Seconds a person has to finish logging in at the provider before the login "
        "expires and must be started again.",
    )
    max_pending_logins = Int(
        10000,
        config=True,
        help="Most logins waiting for their callback at once; beyond it the oldest is "
        "forgotten (a flood of started logins cannot use up memory).",
    )
    http_timeout = Float(
        10.0, config=True, help="Seconds to wait for each request to the provider."
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pending: dict[str, PendingLogin] = {}  # oldest first
        self._evicted = 0

    @validate("name")
    def _valid_name(self, proposal: Any) -> str:
        value: str = proposal["value"]
        if not SLUG.match(value):
            raise TraitError(f"OAuth login name {value!r} is not a URL slug ([a-z0-9][a-z0-9-]*)")
        return value

    @property
    def service(self) -> str:
        """The provider's name as people see it."""
        return self.login_service or self.name

    def redirect_uri_for(self, server_url: str) -> str:
        """The redirect URI for a server reached at ``server_url`` (scheme://host[:port])."""
        return self.callback_url or f"{server_url.rstrip('/')}/oauth/{self.name}/callback"

    # ---- the flow ----------------------------------------------------------------------

    async def begin(self, redirect_uri: str) -> tuple[str, str]:
        """Start a login; return (URL to send the browser to, state).

        The state is remembered with a fresh nonce and PKCE verifier until its
        callback or ``login_timeout``. Raises LoginUnavailable if the provider
        cannot be reached (discovery).
        """
        endpoint = await self.authorization_endpoint()
        self._require_secure(endpoint, "authorization endpoint")
        now = time.monotonic()
        self._forget_expired(now)
        while len(self._pending) >= max(1, self.max_pending_logins):
            self._pending.pop(next(iter(self._pending)))
            self._evicted += 1
            if self._evicted % 1000 == 1:
                self.log.warning(
                    "%s: %d unfinished logins dropped so far (too many started at once)",
                    self.name,
                    self._evicted,
                )
        state = secrets.token_urlsafe(32)
        login = PendingLogin(
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(64),
            redirect_uri=redirect_uri,
            expires_at=now + self.login_timeout,
        )
        self._pending[state] = login
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.scopes),
            "state": state,
            "code_challenge": str(create_s256_code_challenge(login.code_verifier)),
            "code_challenge_method": "S256",
            **self.extra_authorization_params(login),
        }
        parts = urllib.parse.urlsplit(endpoint)
        query = urllib.parse.urlencode(
            [*urllib.parse.parse_qsl(parts.query, keep_blank_values=True), *params.items()]
        )
        return urllib.parse.urlunsplit(parts._replace(query=query)), state

    def _forget_expired(self, now: float) -> None:
        # Oldest first, so the expired ones are at the front.
        while self._pending:
            state, login = next(iter(self._pending.items()))
            if login.expires_at > now:
                return
            del self._pending[state]

    async def authenticate(self, attempt: OAuthCallback) -> AuthenticatedUser | None:
        """Finish a login from its callback (single use); the identity at the provider.

        Raises LoginRefused for an unknown, expired or reused state, a redirect
        URI other than the one the login began with, an error from the
        provider, or a code or identity the provider or these checks reject;
        LoginUnavailable when the provider cannot be reached.
        """
        login = self._pending.pop(attempt.state, None) if attempt.state else None
        if attempt.error:
            code = attempt.error if _ERROR_CODE.match(attempt.error) else "error"
            self.log.info("%s: the provider returned %s", self.name, code)
            if code == "access_denied":
                raise LoginRefused(f"The login at {self.service} was cancelled or refused.")
            raise LoginRefused(f"{self.service} could not log you in ({code}); please try again.")
        if login is None or login.expires_at <= time.monotonic():
            self.log.warning("%s: callback with an unknown, used or expired state", self.name)
            raise LoginRefused("This login has expired or was already used; please log in again.")
        if attempt.redirect_uri != login.redirect_uri:
            self.log.warning(
                "%s: callback at %r for a login that began with %r",
                self.name,
                attempt.redirect_uri[:200],
                login.redirect_uri,
            )
            raise LoginRefused("This login came back to the wrong address; please log in again.")
        if not attempt.code:
            raise LoginRefused(f"{self.service} sent no login code; please log in again.")
        return await self.identify(attempt.code, login)

    # ---- what subclasses provide -------------------------------------------------------

    async def authorization_endpoint(self) -> str:
        """The provider's authorization URL; may raise LoginUnavailable."""
        raise NotImplementedError

    def extra_authorization_params(self, login: PendingLogin) -> dict[str, str]:
        """Parameters added to the authorization URL (OIDC adds the nonce)."""
        return {}

    async def identify(self, code: str, login: PendingLogin) -> AuthenticatedUser:
        """Exchange ``code`` for tokens and say who logged in; raise LoginRefused if refused."""
        raise NotImplementedError

    # ---- helpers for subclasses --------------------------------------------------------

    def _require_secure(self, url: str, what: str) -> None:
        if not is_secure_transport(url):
            self.log.error("%s: the %s %s is neither https nor loopback", self.name, what, url)
            raise LoginUnavailable(f"Logging in with {self.service} is misconfigured.")

    async def fetch_json(
        self,
        url: str,
        what: str,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """GET ``url`` (or POST ``form`` to it) and parse the JSON answer.

        Returns (status, JSON) for 2xx and 4xx answers. Raises
        LoginUnavailable if the URL is not https (or loopback), the provider
        cannot be reached or times out, or answers otherwise (redirects are
        not followed) or not in JSON.
        ``what`` names the call in log messages; bodies are never logged.
        """
        self._require_secure(url, what)
        request = HTTPRequest(
            url,
            method="GET" if form is None else "POST",
            body=None if form is None else urllib.parse.urlencode(form),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})},
            connect_timeout=self.http_timeout,
            request_timeout=self.http_timeout,
            follow_redirects=False,
        )
        unavailable = LoginUnavailable(
            f"{self.service} cannot be reached right now; please try again in a moment."
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as e:
            self.log.warning("%s: %s at %s failed: %s", self.name, what, url, e)
            raise unavailable from e
        if not (200 <= response.code < 300 or 400 <= response.code < 500):
            self.log.warning("%s: %s at %s answered %d", self.name, what, url, response.code)
            raise unavailable
        try:
            return response.code, json.loads(response.body)
        except ValueError as e:
            self.log.warning(
                "%s: %s at %s answered %d, not JSON", self.name, what, url, response.code
            )
            raise unavailable from e

    async def exchange_code(
        self, token_endpoint: str, code: str, login: PendingLogin, basic_auth: bool
    ) -> dict[str, Any]:
        """Trade ``code`` (with the PKCE verifier and this client's credentials) for tokens.

        ``basic_auth`` sends the credentials in an Authorization header
        (client_secret_basic), else in the form (client_secret_post); without
        a ``client_secret`` only the client ID is sent (a public client). Returns
        the token response with a string ``access_token``. Raises LoginRefused
        if the provider rejects the code (used, expired, wrong redirect URI or
        verifier), LoginUnavailable as ``fetch_json``.
        """
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": login.redirect_uri,
            "code_verifier": login.code_verifier,
            "client_id": self.client_id,
        }
        headers: dict[str, str] = {}
        if not self.client_secret:
            pass  # a public client: PKCE alone proves this is the login that began
        elif basic_auth:
            pair = f"{urllib.parse.quote(self.client_id, safe='')}:" + urllib.parse.quote(
                self.client_secret, safe=""
            )
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_secret"] = self.client_secret
        status, tokens = await self.fetch_json(token_endpoint, "token request", form, headers)
        if not isinstance(tokens, dict) or status != 200 or "error" in tokens:
            error = tokens.get("error") if isinstance(tokens, dict) else None
            self.log.warning("%s: token request refused (%d): %r", self.name, status, error)
            if error == "invalid_client":
                self.log.error("%s: the provider rejects client_id/client_secret", self.name)
            raise LoginRefused(f"{self.service} did not accept this login; please log in again.")
        if not isinstance(tokens.get("access_token"), str):
            self.log.warning("%s: token response without an access token", self.name)
            raise LoginRefused(f"{self.service} did not accept this login; please log in again.")
        return tokens

    def _refused_identity(self) -> LoginRefused:
        return LoginRefused(f"The login at {self.service} could not be verified; please try again.")


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of an OpenID provider's discovery document this server uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str
    basic_auth: bool
    id_token_algorithms: tuple[str, ...]


class GenericOIDCAuthenticator(OAuthenticator):
    """Log in with any OpenID Connect provider found by discovery (Keycloak, Google, ...).

    Users are keyed by the ID token's (iss, sub). The name comes from
    ``username_claim``; an email is used as a name, or for
    ``allowed_domains``, only if the provider says it is verified.
    """

    issuer = Unicode(
        "",
        config=True,
        help="The provider's issuer URL; its discovery document is "
        "<issuer>/.well-known/openid-configuration.",
    )
    username_claim = Unicode(
        "preferred_username",
        config=True,
        help="Claim giving the preferred user name (normalized to a valid name; the subject "
        "is used when it is missing or unusable). allowed_users and admin_users match this "
        "name, so pick a claim the provider keeps unique and users cannot change. 'email' "
        "is used only when email_verified is true.",
    )
    allowed_domains = Set(
        Unicode(),
        config=True,
        help="If not empty, only people whose verified email address is in one of these "
        "domains (exact match, e.g. 'example.org') may log in.",
    )
    groups_claim = Unicode("groups", config=True, help="Claim listing the person's groups.")
    allowed_groups = Set(
        Unicode(),
        config=True,
        help="If not empty, only members of one of these groups (or of admin_groups) may log in.",
    )
    admin_groups = Set(Unicode(), config=True, help="Members of these groups are admins.")
    fetch_userinfo = Bool(
        True,
        config=True,
        help="Also read the userinfo endpoint, for claims the ID token leaves out "
        "(the ID token's claims win).",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._metadata: ProviderMetadata | None = None
        self._discovery: asyncio.Task[ProviderMetadata] | None = None
        self._keys: KeySet | None = None

    @default("name")
    def _default_name(self) -> str:
        return "oidc"

    @default("login_service")
    def _default_login_service(self) -> str:
        return "OpenID Connect"

    @default("scopes")
    def _default_scopes(self) -> list[str]:
        return ["openid", "profile", "email"]

    async def start(self) -> None:
        """Check the configuration and fetch discovery (retried at the first login if down).

        Raises ValueError if ``issuer`` or ``client_id`` is missing.
        """
        if not self.issuer or not self.client_id:
            raise ValueError(f"OAuth login {self.name!r} needs an issuer and a client_id")
        try:
            await self.metadata()
        except LoginUnavailable:
            self.log.warning("%s: discovery failed; retrying at the first login", self.name)

    async def stop(self) -> None:
        if self._discovery is not None and not self._discovery.done():
            self._discovery.cancel()

    async def metadata(self) -> ProviderMetadata:
        """The provider's discovery metadata, fetched once (concurrent callers share one fetch).

        Raises LoginUnavailable if it cannot be fetched or is unusable; the
        next call tries again.
        """
        if self._metadata is not None:
            return self._metadata
        if self._discovery is None or self._discovery.done():
            self._discovery = asyncio.ensure_future(self._discover())
            self._discovery.add_done_callback(lambda t: t.cancelled() or t.exception())
        self._metadata = await asyncio.shield(self._discovery)
        return self._metadata

    async def _discover(self) -> ProviderMetadata:
        issuer = self.issuer.rstrip("/")
        url = f"{issuer}/.well-known/openid-configuration"
        status, doc = await self.fetch_json(url, "discovery")
        if status != 200 or not isinstance(doc, dict):
            self.log.error("%s: discovery at %s answered %d", self.name, url, status)
            raise LoginUnavailable(f"{self.service} cannot be reached right now.")
        required = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
        if not all(isinstance(doc.get(key), str) for key in required):
            self.log.error("%s: discovery document lacks one of %s", self.name, required)
            raise LoginUnavailable(f"Logging in with {self.service} is misconfigured.")
        if doc["issuer"].rstrip("/") != issuer:
            self.log.error(
                "%s: discovery names issuer %r, not %r", self.name, doc["issuer"], issuer
            )
            raise LoginUnavailable(f"Logging in with {self.service} is misconfigured.")
        methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        algorithms = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
        userinfo = doc.get("userinfo_endpoint")
        return ProviderMetadata(
            issuer=doc["issuer"],
            authorization_endpoint=doc["authorization_endpoint"],
            token_endpoint=doc["token_endpoint"],
            jwks_uri=doc["jwks_uri"],
            userinfo_endpoint=userinfo if isinstance(userinfo, str) else "",
            basic_auth="client_secret_basic" in methods or "client_secret_post" not in methods,
            id_token_algorithms=tuple(a for a in algorithms if isinstance(a, str)),
        )

    async def authorization_endpoint(self) -> str:
        return (await self.metadata()).authorization_endpoint

    def extra_authorization_params(self, login: PendingLogin) -> dict[str, str]:
        return {"nonce": login.nonce}

    async def identify(self, code: str, login: PendingLogin) -> AuthenticatedUser:
        meta = await self.metadata()
        tokens = await self.exchange_code(meta.token_endpoint, code, login, meta.basic_auth)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            self.log.warning("%s: no ID token (is 'openid' in scopes?)", self.name)
            raise self._refused_identity()
        claims = await self._verified_claims(meta, id_token, login.nonce)
        if self.fetch_userinfo and meta.userinfo_endpoint:
            bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
            status, info = await self.fetch_json(meta.userinfo_endpoint, "userinfo", None, bearer)
            if status != 200 or not isinstance(info, dict) or info.get("sub") != claims["sub"]:
                self.log.warning(
                    "%s: userinfo answered %d for another or no subject", self.name, status
                )
                raise self._refused_identity()
            merged = {**info, **claims}
            # An email and whether it is verified come as a pair, from one source.
            if "email" in claims and "email_verified" not in claims:
                same = info.get("email") == claims["email"]
                merged["email_verified"] = info.get("email_verified") if same else None
            elif "email" not in claims and "email_verified" in claims:
                merged["email_verified"] = info.get("email_verified")
            claims = merged
        return self.user_from_claims(meta.issuer, claims)

    async def _verified_claims(
        self, meta: ProviderMetadata, id_token: str, nonce: str
    ) -> dict[str, Any]:
        for attempt in range(2):
            if self._keys is None or attempt == 1:
                status, jwks = await self.fetch_json(meta.jwks_uri, "key set")
                try:
                    self._keys = KeySet.import_key_set(jwks)
                except (JoseError, ValueError, KeyError, TypeError) as e:
                    self.log.error("%s: unusable key set (%d): %r", self.name, status, e)
                    raise LoginUnavailable(
                        f"Logging in with {self.service} is misconfigured."
                    ) from e
            try:
                return validate_id_token(
                    id_token,
                    self._keys,
                    issuer=meta.issuer,
                    client_id=self.client_id,
                    nonce=nonce,
                    algorithms=meta.id_token_algorithms,
                )
            except InvalidKeyIdError:
                continue  # the provider may have rotated its keys: fetch them again, once
            except InvalidIdToken as e:
                self.log.warning("%s: ID token refused: %s", self.name, e)
                raise self._refused_identity() from e
        self.log.warning("%s: ID token signed with a key not in the key set", self.name)
        raise self._refused_identity()

    def user_from_claims(self, issuer: str, claims: Mapping[str, Any]) -> AuthenticatedUser:
        """The person a verified set of claims describes, after this method's own checks.

        Raises LoginRefused when ``username_claim`` is "email" and the email is
        not verified, or when ``allowed_domains``/``allowed_groups`` exclude them.
        """
        subject = str(claims["sub"])
        email = claims.get("email") if isinstance(claims.get("email"), str) else ""
        verified = claims.get("email_verified") is True and bool(email)
        if self.allowed_domains:
            local, at, domain = str(email).rpartition("@")
            domain = domain.lower() if verified and local and at else ""
            if domain not in {d.lower() for d in self.allowed_domains}:
                self.log.warning("%s: %s refused: email domain not allowed", self.name, subject)
                if not verified:
                    raise LoginRefused(
                        f"Your email address at {self.service} is not verified; verify it "
                        "there, then log in again."
                    )
                raise LoginRefused("Your email address is not in a domain allowed here.")
        raw = claims.get(self.username_claim)
        if self.username_claim == "email" and not verified:
            self.log.warning("%s: %s refused: email not verified", self.name, subject)
            raise LoginRefused(
                f"Your email address at {self.service} is not verified; verify it there, "
                "then log in again."
            )
        name = preferred_name(raw) or subject_name(issuer, subject)
        listed = claims.get(self.groups_claim)
        groups = {g for g in listed if isinstance(g, str)} if isinstance(listed, list) else set()
        admin = bool(groups & self.admin_groups)
        if self.allowed_groups and not admin and not groups & self.allowed_groups:
            self.log.warning("%s: %s refused: not in an allowed group", self.name, subject)
            raise LoginRefused("Your account is not in a group allowed here.")
        return AuthenticatedUser(
            name=name,
            provider="oauth",
            admin=admin,
            issuer=issuer,
            subject=subject,
            display_name=_display_name(claims.get("name")) or _display_name(raw) or name,
        )


@dataclass(frozen=True, slots=True)
class GitHubIdentity:
    """Who a GitHub /user answer describes."""

    subject: str  # the numeric account id: stable across renames
    login: str
    display_name: str


def parse_github_user(profile: object) -> GitHubIdentity:
    """The identity in a GitHub ``/user`` answer; raises ValueError if it has none."""
    if not isinstance(profile, dict):
        raise ValueError("not an object")
    user_id, login = profile.get("id"), profile.get("login")
    if isinstance(user_id, bool) or not isinstance(user_id, int) or not isinstance(login, str):
        raise ValueError("no numeric id and login")
    return GitHubIdentity(str(user_id), login, _display_name(profile.get("name")) or login)


class GitHubAuthenticator(OAuthenticator):
    """Log in with GitHub (OAuth app). GitHub has no ID token: state and PKCE protect the flow.

    Users are keyed by ("https://github.com", numeric account id); the name is
    the GitHub login, lowercased.
    """

    github_url = Unicode(
        "https://github.com",
        config=True,
        help="GitHub's web URL (GitHub Enterprise: your server's); the authorization and "
        "token endpoints are under <github_url>/login/oauth/, and it is the issuer of "
        "the identities.",
    )
    api_url = Unicode(
        "https://api.github.com",
        config=True,
        help="GitHub's REST API URL (GitHub Enterprise: <server>/api/v3).",
    )
    allowed_organizations = Set(
        Unicode(),
        config=True,
        help="If not empty, only active members of one of these organizations may log in "
        "(asks for the read:org scope).",
    )

    @default("name")
    def _default_name(self) -> str:
        return "github"

    @default("login_service")
    def _default_login_service(self) -> str:
        return "GitHub"

    @default("scopes")
    def _default_scopes(self) -> list[str]:
        return ["read:user"]

    async def start(self) -> None:
        """Raises ValueError if ``client_id`` is missing."""
        if not self.client_id:
            raise ValueError(f"OAuth login {self.name!r} needs a client_id")

    def extra_authorization_params(self, login: PendingLogin) -> dict[str, str]:
        scopes = list(self.scopes)
        if self.allowed_organizations and "read:org" not in scopes:
            scopes.append("read:org")
        return {"scope": " ".join(scopes), "allow_signup": "false"}

    async def authorization_endpoint(self) -> str:
        return f"{self.github_url.rstrip('/')}/login/oauth/authorize"

    async def identify(self, code: str, login: PendingLogin) -> AuthenticatedUser:
        token_url = f"{self.github_url.rstrip('/')}/login/oauth/access_token"
        tokens = await self.exchange_code(token_url, code, login, basic_auth=False)
        headers = {
            "Authorization": f"Bearer {tokens['access_token']}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        api = self.api_url.rstrip("/")
        status, profile = await self.fetch_json(f"{api}/user", "user request", None, headers)
        try:
            if status != 200:
                raise ValueError(f"status {status}")
            identity = parse_github_user(profile)
        except ValueError as e:
            self.log.warning("%s: unusable /user answer: %s", self.name, e)
            raise self._refused_identity() from e
        if self.allowed_organizations:
            for org in sorted(self.allowed_organizations):
                url = f"{api}/user/memberships/orgs/{urllib.parse.quote(org, safe='')}"
                status, membership = await self.fetch_json(url, "membership request", None, headers)
                if (
                    status == 200
                    and isinstance(membership, dict)
                    and membership.get("state") == "active"
                ):
                    break
            else:
                self.log.warning("%s: %s is in no allowed organization", self.name, identity.login)
                raise LoginRefused("Your GitHub account is not in an organization allowed here.")
        return AuthenticatedUser(
            name=identity.login.lower(),
            provider="oauth",
            issuer=self.github_url.rstrip("/"),
            subject=identity.subject,
            display_name=identity.display_name,
        )
