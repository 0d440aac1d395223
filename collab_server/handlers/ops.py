"""Endpoints for operators and their tools.

- ``GET /metrics``: Prometheus metrics (see :mod:`collab_server.metrics`), for admins
  (a token or a session), or for anyone when ``CollabServer.authenticate_metrics`` is False.
- ``GET /health``: ``{"status": "ok", "checks": {...}}`` (200) when every database
  answers, else ``"status": "failing"`` (503) with what failed; no credentials needed.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from auth.identity import IdentityProvider
from auth.permissions import Action

from ..access import Authorizer
from ..health import DatabaseHealth
from .base import APIHandler


class MetricsHandler(APIHandler):
    def initialize(  # type: ignore[override]
        self,
        identity: IdentityProvider,
        authorizer: Authorizer,
        registry: CollectorRegistry,
        authenticate: bool,
    ) -> None:
        super().initialize(identity)
        self.authorizer = authorizer
        self.registry = registry
        self.authenticate = authenticate

    async def prepare(self) -> None:
        if not self.authenticate:
            return
        await super().prepare()
        self.authorizer.require_server(self.user, Action.SEE_METRICS)

    def get(self) -> None:
        # The Prometheus text format, or OpenMetrics if the scraper asks for it.
        encode, content_type = choose_encoder(self.request.headers.get("Accept", ""))
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "no-store")
        self.finish(encode(self.registry))


class HealthHandler(APIHandler):
    def initialize(self, health: DatabaseHealth) -> None:  # type: ignore[override]
        self.health = health

    async def prepare(self) -> None:
        pass  # load balancers present no credentials; the answer holds no secrets

    async def get(self) -> None:
        checks = await self.health.check()
        ok = all(result == "ok" for result in checks.values())
        self.set_header("Cache-Control", "no-store")
        self.write_json({"status": "ok" if ok else "failing", "checks": checks}, 200 if ok else 503)
