"""A browser-like HTTP client for tests: a cookie jar, the XSRF token, manual redirects."""

from __future__ import annotations

import urllib.parse
from http.cookies import SimpleCookie
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPResponse


class WebClient:
    """Keeps cookies per host like a browser; never follows redirects by itself.

    ``network_interface`` binds the client's source address (any of
    127.0.0.0/8), so a test can look like another machine to the server.
    ``ca_certs`` is the CA file that https servers' certificates must chain to.
    """

    def __init__(
        self, base_url: str, network_interface: str | None = None, ca_certs: str | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.network_interface = network_interface
        self.ca_certs = ca_certs
        self.cookies: dict[str, dict[str, str]] = {}  # host -> name -> value

    def _host(self, url: str) -> str:
        return urllib.parse.urlsplit(url).netloc

    def cookie(self, name: str, url: str | None = None) -> str | None:
        return self.cookies.get(self._host(url or self.base_url), {}).get(name)

    async def request(
        self,
        method: str,
        url: str,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        xsrf: bool = True,
    ) -> HTTPResponse:
        """One request (no redirect following); ``url`` may be a path on the base URL.

        With ``xsrf``, state-changing requests carry the ``_xsrf`` cookie's
        value, as the app's own pages do.
        """
        if url.startswith("/"):
            url = self.base_url + url
        all_headers = dict(headers or {})
        jar = self.cookies.get(self._host(url), {})
        if form is not None:
            fields = dict(form)
            if xsrf and "_xsrf" not in fields and "_xsrf" in jar:
                fields["_xsrf"] = jar["_xsrf"]
            body = urllib.parse.urlencode(fields)
            all_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif xsrf and method not in ("GET", "HEAD") and "_xsrf" in jar:
            all_headers.setdefault("X-XSRFToken", jar["_xsrf"])
        if jar:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        response = await AsyncHTTPClient().fetch(
            url,
            method=method,
            body=body,
            headers=all_headers,
            follow_redirects=False,
            raise_error=False,
            network_interface=self.network_interface,
            ca_certs=self.ca_certs,
            allow_nonstandard_methods=True,
        )
        for header in response.headers.get_list("Set-Cookie"):
            parsed = SimpleCookie()
            parsed.load(header)
            for name, morsel in parsed.items():
                host_jar = self.cookies.setdefault(self._host(url), {})
                expired = morsel["max-age"] == "0" or "1970" in morsel["expires"]
                if expired or morsel.value == "":
                    host_jar.pop(name, None)
                else:
                    host_jar[name] = morsel.value
        return response

    async def get(self, url: str, **kwargs: Any) -> HTTPResponse:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> HTTPResponse:
        return await self.request("POST", url, **kwargs)

    async def follow(self, response: HTTPResponse, limit: int = 10) -> HTTPResponse:
        """Follow redirects from ``response`` (across hosts), like a browser would."""
        for _ in range(limit):
            if response.code not in (301, 302, 303, 307):
                return response
            location = urllib.parse.urljoin(response.effective_url, response.headers["Location"])
            response = await self.get(location)
        raise AssertionError("too many redirects")

    async def login(self, username: str, password: str, next_url: str = "/") -> HTTPResponse:
        """Log in through the login form; returns the form's response (302 on success)."""
        await self.get("/login")
        return await self.post(
            "/login", form={"username": username, "password": password, "next": next_url}
        )
