"""Prometheus metrics: one ``Metrics`` object per app, with its own registry.

Why a registry per app rather than prometheus_client's global one: tests build many apps in one
process, and a global registry refuses a second metric of the same name. No aiohttp here:
GET /metrics (``agent.actions.service``) serves ``render()``; ``agent.api.observe`` observes requests.

Labels are bounded: the route is the route's *template* (``/desktop/window/{window_id}/size``),
never the raw path, so an id in a URL cannot explode the series count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from agent import __version__
from agent.supervision.readiness import ReadinessState, Status

LOG = logging.getLogger(__name__)
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Input actions take ~1 ms, screenshots ~10-100 ms, exec and a11y walks up to seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram(
            "computer_agent_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.actions = Counter(
            "computer_agent_actions",
            "Actions run (REST, /actions or /batch), by type and result (ok or an error code).",
            ["type", "result"],
            registry=self.registry,
        )
        self.ready = Gauge(
            "computer_agent_ready", "1 when every required readiness check passes.", registry=self.registry
        )
        self.check_ok = Gauge(
            "computer_agent_readiness_check_ok",
            "1 when this readiness check passes.",
            ["check"],
            registry=self.registry,
        )
        self.status = Gauge(
            "computer_agent_status",
            "1 for the agent's current status (starting, ready, degraded, stopping).",
            ["status"],
            registry=self.registry,
        )
        self.heartbeat_last_success = Gauge(
            "computer_agent_heartbeat_last_success_timestamp_seconds",
            "Unix time of the last heartbeat the control plane accepted (0: none yet).",
            registry=self.registry,
        )
        self.heartbeat_failures = Counter(
            "computer_agent_heartbeat_failures",
            "Heartbeats that failed (error status, timeout or connection error).",
            registry=self.registry,
        )
        self.in_flight_gauge = Gauge(
            "computer_agent_http_requests_in_flight", "Requests being answered now.", registry=self.registry
        )
        # The tasks answering requests now, so a graceful stop can wait for them, then cancel them.
        self.in_flight: set[asyncio.Task[object]] = set()
        self._request_series: dict[tuple[str, str, int], Histogram] = {}
        self._action_series: dict[tuple[str, str], Counter] = {}
        info = Gauge(
            "computer_agent_info",
            "Constant 1, labelled with the agent version.",
            ["version"],
            registry=self.registry,
        )
        info.labels(version=__version__).set(1)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        # Each request's series found once (labels() validates and locks: ~3 us a request); the
        # keys are bounded as the labels are (route templates, methods, statuses).
        key = (route, method, status)
        series = self._request_series.get(key)
        if series is None:
            series = self._request_series[key] = self.requests.labels(
                route=route, method=method, status=str(status)
            )
        series.observe(seconds)

    def request_started(self, task: asyncio.Task[object] | None) -> None:
        self.in_flight_gauge.inc()
        if task is not None:
            self.in_flight.add(task)

    def request_finished(self, task: asyncio.Task[object] | None) -> None:
        self.in_flight_gauge.dec()
        if task is not None:
            self.in_flight.discard(task)

    async def finish_in_flight(self, grace: float) -> int:
        """Give the requests being answered ``grace`` seconds, then cancel the rest (the count)."""
        pending = {task for task in self.in_flight if not task.done()}
        if not pending:
            return 0
        LOG.info("waiting up to %.1f s for %d request(s) in flight", grace, len(pending))
        _, still = await asyncio.wait(pending, timeout=grace)
        for task in still:
            task.cancel()
        if still:
            LOG.warning("cancelled %d request(s) still running after %.1f s", len(still), grace)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait(still, timeout=1.0)
        return len(still)

    def count_action(self, action_type: str, result: str) -> None:
        """``result`` is "ok" or the error code (INVALID_ARGUMENT, DISPLAY_UNAVAILABLE, ...)."""
        key = (action_type, result)
        series = self._action_series.get(key)
        if series is None:
            series = self._action_series[key] = self.actions.labels(type=action_type, result=result)
        series.inc()

    def readiness_changed(self, state: ReadinessState) -> None:
        """A Readiness listener: mirror the state into the gauges."""
        self.ready.set(1 if state.ready else 0)
        for check in state.checks:
            self.check_ok.labels(check=check.name).set(1 if check.ok else 0)
        for status in Status:
            self.status.labels(status=status.value).set(1 if status is state.status else 0)

    def heartbeat_succeeded(self, unix_time: float) -> None:
        self.heartbeat_last_success.set(unix_time)

    def heartbeat_failed(self) -> None:
        self.heartbeat_failures.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
