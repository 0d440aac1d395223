"""The server's Prometheus metrics, read from the running services when scraped.

Every figure is read at scrape time from the object that owns it (rooms,
the update store, the kernels, the execution log, the login methods), which
keep plain counts and know nothing of Prometheus. Counters are totals since
the server started; Prometheus's ``rate()`` turns them into per-second rates.
The registry is the server's own, never prometheus_client's global one, so
two servers in one process (as in the tests) never mix their figures.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from auth.authenticator import Authenticator
from crdt.rooms import RoomManager
from crdt.store import UpdateStore
from kernels.log import FINAL_STATUSES, ExecutionLog
from kernels.pool import KernelPool
from kernels.running import NotebookKernels

from .services import Services

LOGIN_FAILURES = ("refused", "throttled", "unavailable")


class ServerCollector(Collector):
    """Rooms, connections, updates, store lag, autosaves, kernels, executions, failed logins,
    WebSockets closed by the server."""

    def __init__(
        self,
        rooms: RoomManager,
        store: UpdateStore,
        kernels: NotebookKernels,
        pool: KernelPool,
        execution_log: ExecutionLog,
        authenticators: list[Authenticator[Any]],
        websocket_closes: collections.Counter[int],
    ) -> None:
        self.rooms = rooms
        self.store = store
        self.kernels = kernels
        self.pool = pool
        self.execution_log = execution_log
        self.authenticators = authenticators
        self.websocket_closes = websocket_closes

    def collect(self) -> Iterator[Metric]:
        """Called by the registry on the event loop, for each scrape: reads only, never waits."""
        yield GaugeMetricFamily(
            "collab_rooms_open",
            "Notebooks loaded in memory (open rooms).",
            len(self.rooms.open_rooms()),
        )
        yield GaugeMetricFamily(
            "collab_connections",
            "WebSocket clients connected to rooms.",
            self.rooms.connection_count(),
        )
        updates = CounterMetricFamily(
            "collab_updates",
            "Changes applied to documents: from clients (edits) or the server (outputs, "
            "files changed on disk).",
            labels=["origin"],
        )
        updates.add_metric(["client"], self.rooms.counters.client_updates)
        updates.add_metric(["server"], self.rooms.counters.server_updates)
        yield updates
        yield GaugeMetricFamily(
            "collab_store_write_lag_seconds",
            "Age of the oldest document update not yet committed to the update store.",
            self.store.write_lag(),
        )
        yield GaugeMetricFamily(
            "collab_autosave_queue",
            "Rooms waiting for their .ipynb file to be written.",
            self.rooms.autosaver.queued,
        )
        kernels = GaugeMetricFamily(
            "collab_kernels", "Notebooks' kernels, by state.", labels=["state"]
        )
        for state, count in self.kernels.states().items():
            kernels.add_metric([state], count)
        yield kernels
        yield GaugeMetricFamily(
            "collab_kernel_spares", "Pre-started spare kernels ready.", self.pool.spare_count()
        )
        executions = CounterMetricFamily(
            "collab_executions", "Cell executions finished, by outcome.", labels=["status"]
        )
        for status in sorted(FINAL_STATUSES):
            executions.add_metric([status], self.execution_log.finished[status])
        yield executions
        failed = CounterMetricFamily(
            "collab_failed_logins",
            "Logins refused (wrong credentials, not allowed), throttled, or refused because "
            "the login method was unavailable.",
            labels=["reason"],
        )
        for reason in LOGIN_FAILURES:
            failed.add_metric([reason], sum(a.failed_logins[reason] for a in self.authenticators))
        yield failed
        closes = CounterMetricFamily(
            "collab_websocket_closes",
            "WebSockets the server closed, by close code (see the README's WebSocket API).",
            labels=["code"],
        )
        for code, count in sorted(self.websocket_closes.items()):
            closes.add_metric([str(code)], count)
        yield closes


def server_registry(
    services: Services, websocket_closes: collections.Counter[int]
) -> CollectorRegistry:
    """A registry of this server's metrics, plus its process's (CPU, memory, open files).

    ``websocket_closes`` is the count the room WebSocket handlers keep of the sockets
    they closed, by close code.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        ServerCollector(
            services.rooms,
            services.store,
            services.kernels,
            services.kernel_pool,
            services.execution_log,
            services.authenticators,
            websocket_closes,
        )
    )
    ProcessCollector(registry=registry)
    return registry
