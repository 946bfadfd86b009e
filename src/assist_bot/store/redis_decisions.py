"""Waking turns that wait for an approval's decision, across replicas, without polling.

The click may reach any replica; the turn waiting for it may run on another. The
decision is recorded in the approval's hash and announced on one pub/sub channel (in
the same Lua script, so no decision goes unannounced). Each process keeps ONE
subscription for all its waiting approvals — not a connection per waiting approval,
which a hundred pending approvals would exhaust the pool with.

Pub/sub delivers at most once: a message sent while our connection is down is lost.
So every (re)subscription — Redis confirms each one, also after redis-py reconnects on
its own — wakes every waiter to read its approval again; and a waiter reads it again
after RECHECK seconds without news (about 20 reads at the default 600 s time-out,
instead of 2,400 with polling every 0.25 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

RECHECK = 30.0  # seconds: the safety net under a lost announcement
RETRY = (0.5, 1.0, 2.0, 5.0)  # back-off while Redis is unreachable


class DecisionListener:
    def __init__(self, client: aioredis.Redis | RedisCluster, channel: str) -> None:
        # On a Redis Cluster, PUBLISH reaches the subscribers of every node: one
        # subscription on any node hears every decision.
        self._client = client
        self.channel = channel
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def wait(self, key: str, read: Callable[[], Awaitable[tuple[bool, Any]]]) -> Any:
        """Wait until `read()` says done: (True, value) → value. `read` is called once the
        subscription stands, then again on each announcement for `key`."""
        woken = asyncio.Event()
        self._waiters.setdefault(key, set()).add(woken)
        me = asyncio.current_task()
        try:
            self._start()
            await self._subscribed.wait()
            while True:
                woken.clear()
                done, value = await read()
                if done:
                    return value
                if me is not None and me.cancelling():
                    # redis-py (8.1) can swallow a cancellation that arrives mid-command and
                    # return normally; waiting on would then never end.
                    raise asyncio.CancelledError
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RECHECK):
                        await woken.wait()
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(woken)
                if not waiters:
                    del self._waiters[key]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._listen(), name="approval decisions")

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    async for message in pubsub.listen():
                        failures = 0
                        self._on(message)
                raise ConnectionError("the subscription ended")
            except (RedisError, OSError) as exc:
                self._subscribed.clear()
                delay = RETRY[min(failures, len(RETRY) - 1)]
                failures += 1
                log.warning("approval decisions: subscription lost (%s); again in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)

    def _on(self, message: dict[str, Any]) -> None:
        if message["type"] == "subscribe":
            # Subscribed, or subscribed again after a reconnection: whatever was announced
            # meanwhile is lost, so everyone reads their approval again.
            self._subscribed.set()
            for waiters in self._waiters.values():
                for woken in waiters:
                    woken.set()
        elif message["type"] == "message":
            for woken in self._waiters.get(message["data"], ()):
                woken.set()
