"""The store's part in Stop, on both twins: a running answer's record, a stop recorded once
for that answer only, and the wait that wakes the answer's replica without polling."""

from __future__ import annotations

import asyncio

import pytest

from assist_bot.store import Store, ThreadKey
from tests.store.test_contract import THREAD, store, ttl  # noqa: F401 (the twins' fixture)

pytestmark = pytest.mark.timeout(30)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_stop_wakes_the_answer_it_names_once(store: Store):  # noqa: F811
    await store.put_running(THREAD, "200.1", ["U1", "U2"])
    assert await store.get_running(THREAD) == {"turn": "200.1", "askers": ["U1", "U2"]}
    assert 3500 < await ttl(store, store.keys.running(THREAD)) <= 3600  # a dead replica's record goes
    waiting = asyncio.create_task(store.wait_for_stop(THREAD, "200.1"))
    await settle()
    assert not waiting.done()
    assert not await store.request_stop(THREAD, "199.9", "U1")  # an earlier answer's button
    assert not await store.request_stop(ThreadKey("T2", "C1", "100.1"), "200.1", "U1")  # another team
    await settle()
    assert not waiting.done()
    assert await store.request_stop(THREAD, "200.1", "U2")
    assert not await store.request_stop(THREAD, "200.1", "U1")  # once
    assert await asyncio.wait_for(waiting, 5) == "U2"
    assert (await store.get_running(THREAD) or {}).get("stopped_by") == "U2"


async def test_an_answer_that_ends_wakes_its_watch_and_leaves_a_later_ones_record(store: Store):  # noqa: F811
    await store.put_running(THREAD, "200.1", ["U1"])
    waiting = asyncio.create_task(store.wait_for_stop(THREAD, "200.1"))
    await settle()
    await store.clear_running(THREAD, "200.1")
    assert await asyncio.wait_for(waiting, 5) is None
    assert await store.get_running(THREAD) is None
    assert not await store.request_stop(THREAD, "200.1", "U1")  # nothing runs: nothing to stop
    await store.put_running(THREAD, "300.1", ["U1"])
    await store.clear_running(THREAD, "200.1")  # a late clean-up of the earlier answer
    assert (await store.get_running(THREAD) or {})["turn"] == "300.1"
