"""Prometheus metrics: one registry per bot (no process-global state), served as
`GET /metrics` on the HTTP-mode app and, when ASSIST_BOT_METRICS_PORT is set, on a
small listener of its own (Socket Mode has no HTTP server otherwise) that also serves
`/healthz`, so a container health check works in both modes.

What is counted is measured at the boundaries: Slack calls in the Slack client's retry
handlers, OpenAI calls in the OpenAI client's HTTP event hooks (instrument.py), turns
where the dispatcher opens a reply and runs the engine (observe.py)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"

# Seconds; a first token usually comes within a few, a long answer with tools takes minutes.
FIRST_TOKEN_BUCKETS = (0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120)
FINAL_TEXT_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


class Metrics:
    """Every metric of one bot, in its own registry."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.turns = Counter(
            "assist_bot_turns", "Turns answered, by outcome (done or the failure kind)", ["outcome"], registry=r
        )
        self.first_token = Histogram(
            "assist_bot_time_to_first_token_seconds",
            "From the start of a turn (its reply opened) to the first text from the model",
            buckets=FIRST_TOKEN_BUCKETS,
            registry=r,
        )
        self.final_text = Histogram(
            "assist_bot_time_to_final_text_seconds",
            "From the start of a turn to the model's complete answer",
            buckets=FINAL_TEXT_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge("assist_bot_queue_depth", "Turns waiting for a free streaming slot", registry=r)
        self.active_streams = Gauge("assist_bot_active_streams", "Turns streaming from the model now", registry=r)
        self.approvals_waiting = Gauge(
            "assist_bot_approvals_waiting", "Side-effect tool calls waiting for a person's answer", registry=r
        )
        self.slack_requests = Counter(
            "assist_bot_slack_requests",
            "Slack Web API requests (each attempt), by method and HTTP status",
            ["method", "status"],
            registry=r,
        )
        self.slack_errors = Counter(
            "assist_bot_slack_errors",
            "Slack Web API errors, by method and Slack's error code",
            ["method", "error"],
            registry=r,
        )
        self.slack_rate_limited = Counter(
            "assist_bot_slack_rate_limited", "Slack answers with HTTP 429", ["method"], registry=r
        )
        self.openai_requests = Counter(
            "assist_bot_openai_requests",
            "OpenAI API requests (each attempt), by method, endpoint and HTTP status",
            ["method", "endpoint", "status"],
            registry=r,
        )
        self.openai_errors = Counter(
            "assist_bot_openai_errors",
            "OpenAI API answers with an HTTP error status",
            ["method", "endpoint", "status"],
            registry=r,
        )
        self.openai_rate_limited = Counter(
            "assist_bot_openai_rate_limited", "OpenAI answers with HTTP 429", ["endpoint"], registry=r
        )
        self.tokens = Counter(
            "assist_bot_tokens",
            "Tokens OpenAI reported, by model and kind (input, cached, output, reasoning)",
            ["model", "kind"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def handle_metrics(self, _request: web.Request) -> web.Response:
        response = web.Response(body=self.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


class MetricsListener:
    """`GET /metrics` and `GET /healthz` on a port of their own (ASSIST_BOT_METRICS_PORT)."""

    def __init__(self, metrics: Metrics, *, host: str, port: int, healthy: Callable[[], Awaitable[bool]]) -> None:
        self._metrics = metrics
        self._host = host
        self._port = port
        self._healthy = healthy
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def _health(self, _request: web.Request) -> web.Response:
        if await self._healthy():
            return web.json_response({"ok": True})
        return web.json_response({"ok": False, "error": "store unavailable"}, status=503)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(METRICS_PATH, self._metrics.handle_metrics)
        app.router.add_get(HEALTH_PATH, self._health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        self.port = self._runner.addresses[0][1]
        log.info("metrics on http://%s:%s%s", self._host, self.port, METRICS_PATH)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
