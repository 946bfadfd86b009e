"""The OAuth `state` of installs in progress: issued at /slack/install, consumed once at
/slack/oauth_redirect (slack-sdk's `AsyncOAuthStateStore`, which ships no Redis version).

A state is `<nonce>.<signature>`: the signature (HMAC-SHA256 with SLACK_STATE_SECRET) refuses a
forged state before the store is asked, and the nonce is kept in the store for
`expiration_seconds` and deleted by the first consume — so a state works once, on any replica,
and only while it is fresh.
"""

from __future__ import annotations

import abc
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from assist_bot.store.keys import NAMESPACE

log = logging.getLogger(__name__)

DEFAULT_EXPIRATION = 600  # seconds: Bolt's own default for an install to complete


class SignedStateStore(AsyncOAuthStateStore, abc.ABC):
    def __init__(self, *, secret: str, expiration_seconds: int = DEFAULT_EXPIRATION) -> None:
        if not secret:
            raise ValueError("a state secret is required")
        self._secret = secret.encode()
        self.expiration_seconds = expiration_seconds

    @property
    def logger(self) -> logging.Logger:
        return log

    @abc.abstractmethod
    async def _put(self, nonce: str, ttl: int) -> None: ...

    @abc.abstractmethod
    async def _take(self, nonce: str) -> bool:
        """True once for a nonce that was put and has not expired; False after."""

    async def close(self) -> None:
        return None

    def _sign(self, nonce: str) -> str:
        return hmac.new(self._secret, nonce.encode(), hashlib.sha256).hexdigest()

    async def async_issue(self, *args, **kwargs) -> str:
        nonce = secrets.token_urlsafe(24)
        await self._put(nonce, self.expiration_seconds)
        return f"{nonce}.{self._sign(nonce)}"

    async def async_consume(self, state: str) -> bool:
        nonce, _, signature = (state or "").partition(".")
        if not nonce or not hmac.compare_digest(signature, self._sign(nonce)):
            log.warning("refused an OAuth state that this app did not sign")
            return False
        if not await self._take(nonce):
            log.warning("refused an OAuth state that expired or was already used")
            return False
        return True


class RedisStateStore(SignedStateStore):
    def __init__(
        self,
        client: aioredis.Redis | RedisCluster,
        *,
        secret: str,
        expiration_seconds: int = DEFAULT_EXPIRATION,
        namespace: str = NAMESPACE,
    ) -> None:
        super().__init__(secret=secret, expiration_seconds=expiration_seconds)
        self._redis = client
        self._namespace = namespace

    def _key(self, nonce: str) -> str:
        return f"{self._namespace}:oauth-state:{nonce}"

    async def _put(self, nonce: str, ttl: int) -> None:
        await self._redis.set(self._key(nonce), "1", ex=ttl)

    async def _take(self, nonce: str) -> bool:
        # DEL answers 1 to one caller only: two replicas racing on one state cannot both win.
        return bool(await self._redis.delete(self._key(nonce)))


class MemoryStateStore(SignedStateStore):
    def __init__(
        self, *, secret: str, expiration_seconds: int = DEFAULT_EXPIRATION, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(secret=secret, expiration_seconds=expiration_seconds)
        self._clock = clock
        self._deadlines: dict[str, float] = {}

    async def _put(self, nonce: str, ttl: int) -> None:
        now = self._clock()
        self._deadlines = {n: d for n, d in self._deadlines.items() if d > now}  # forget stale installs
        self._deadlines[nonce] = now + ttl

    async def _take(self, nonce: str) -> bool:
        deadline = self._deadlines.pop(nonce, None)
        return deadline is not None and deadline > self._clock()
