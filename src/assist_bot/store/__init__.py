"""State behind a small interface, with Redis and in-process twins."""

from __future__ import annotations

import logging

from assist_bot.store.base import ChannelKey, Store, ThreadKey
from assist_bot.store.keys import Keys

log = logging.getLogger(__name__)


def open_store(*, redis_url: str | None, retention_seconds: int, redis_max_connections: int = 50) -> Store:
    """Redis when a URL is configured, otherwise the embedded memory store."""
    if redis_url:
        from assist_bot.store.redis import RedisStore

        return RedisStore.from_url(
            redis_url, retention_seconds=retention_seconds, max_connections=redis_max_connections
        )
    from assist_bot.store.memory import MemoryStore

    log.warning(
        "REDIS_URL is not set: using the in-process store. State is lost on restart, "
        "and several replicas need Redis to share it."
    )
    return MemoryStore(retention_seconds=retention_seconds)


__all__ = ["ChannelKey", "Keys", "Store", "ThreadKey", "open_store"]
