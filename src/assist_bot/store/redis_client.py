"""The Redis client for REDIS_URL: one Redis, or a Redis Cluster (`redis+cluster://`), with
the connection behaviour the bot relies on — waiting for a connection under a burst, and
reconnecting after an outage with bounded retries."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# REDIS_URL schemes naming a Redis Cluster (any one node of it; the client finds the rest).
CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")

Client = aioredis.Redis | RedisCluster
CONNECT_TIMEOUT = 5.0  # seconds: an unreachable Redis fails a command instead of hanging it
PING_TIMEOUT = 2.0  # seconds the health check waits for Redis


def text(value: object) -> str:
    """A string from a reply. The client decodes responses (decode_responses=True); redis-py's
    types still say bytes | str (or a union with the shapes of options we do not use, such as
    ZRANGE WITHSCORES)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string from Redis, got {type(value).__name__}")


def maybe_text(value: bytes | str | None) -> str | None:
    return None if value is None else text(value)


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEMES)


class GatedCluster(RedisCluster):
    """The cluster client, with callers waiting for a free connection under a burst (1000
    threads at once) instead of failing: redis-py's cluster client raises past
    `max_connections` per node, where the single-node client has a blocking pool. One
    connection is left for the decisions' subscription."""

    def __init__(self, *args: Any, gate: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = asyncio.Semaphore(max(1, gate))

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.gate:
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # refused by redis-py, as it should be
        return _GatedPipeline(self, transaction)  # type: ignore[abstract]  # as redis-py builds its own


class _GatedPipeline(ClusterPipeline):
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        assert isinstance(self.cluster_client, GatedCluster)
        async with self.cluster_client.gate:
            return await super().execute(raise_on_error, allow_redirections)


def connect(url: str, *, max_connections: int) -> Client:
    """A client for REDIS_URL: redis-py's cluster client for a `redis+cluster://` URL."""
    if is_cluster_url(url):
        return GatedCluster.from_url(
            url.replace("+cluster", "", 1),
            gate=max_connections - 1,
            decode_responses=True,
            max_connections=max_connections,
            socket_connect_timeout=CONNECT_TIMEOUT,
        )
    # A blocking pool: under a burst (1000 threads at once) callers wait a moment for
    # a connection; redis-py's default pool raises "Too many connections" past 100,
    # which would drop messages.
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        health_check_interval=30,
        max_connections=max_connections,
        timeout=20,
        socket_connect_timeout=CONNECT_TIMEOUT,
        # After Redis was away, pooled connections are dead: a command on one reconnects
        # and goes again, a few times with a short back-off, then fails (bounded: the
        # caller decides — Slack redelivers an event, a turn retries its end, …).
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return aioredis.Redis(connection_pool=pool)
