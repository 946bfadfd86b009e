"""The knowledge index in Redis across an upgrade: a file indexed by an older version (one owner channel,
kept as a string) is still found, and then kept in the set of channels like any other."""

from __future__ import annotations

import uuid

import pytest

from assist_bot.store import ChannelKey
from assist_bot.store.redis import RedisStore

pytestmark = pytest.mark.timeout(30)


async def test_an_index_written_before_the_upgrade_is_still_found(redis_url):
    store = RedisStore.from_url(redis_url, retention_seconds=60)
    team = "T" + uuid.uuid4().hex[:10].upper()  # a team of its own: nothing else in this Redis is touched
    try:
        c1, c2 = ChannelKey(team, "C1"), ChannelKey(team, "C2")
        await store._redis.hset(store.keys.knowledge(c1), "F1", '{"name":"a.md","openai_file_id":"file-1"}')
        await store._redis.set(store.keys.knowledge_owner(team, "F1"), "C1")  # the old single-owner key
        await store.put_knowledge_file(c2, "F1", {"name": "a.md", "openai_file_id": "file-2"})
        assert await store.knowledge_channels_of(team, "F1") == ["C1", "C2"]
        assert not await store._redis.exists(store.keys.knowledge_owner(team, "F1"))  # moved into the set
        await store.remove_knowledge_file(c1, "F1")
        await store.remove_knowledge_file(c2, "F1")
        assert await store.knowledge_channels_of(team, "F1") == []
    finally:
        await store.close()
