"""A turn ends in exactly one way: the engine's last event is Done or Failed, and a
failure the user should hear about is never raised past the engine."""

from __future__ import annotations

import openai
import pytest

from assist_bot.assistants import Assistant, Assistants
from assist_bot.engine.backends import Backends
from assist_bot.engine.knowledge import Knowledge
from assist_bot.engine.turns import Engine
from assist_bot.events import ApprovalRequest, Decision, Done, Failed, StateChange, TurnEvent
from assist_bot.inbound import Inbound
from assist_bot.store import ThreadKey
from assist_bot.store.base import TurnSnapshot
from assist_bot.store.memory import MemoryStore
from assist_bot.tools.loading import load_registry
from tests.fakes.openai import HttpError, Text
from tests.support.bot import bot_settings

pytestmark = pytest.mark.timeout(30)

THREAD = ThreadKey("T1", "C1", "100.1")
QUESTION = Inbound(team="T1", channel="C1", thread_ts="100.1", ts="100.1", user="U1", user_name="ana", text="hi")


async def never_approve(request: ApprovalRequest) -> Decision:
    return Decision(approved=False, by="U9")


async def events_of(slack, openai_fake, **settings) -> list[TurnEvent]:
    config = bot_settings(slack, openai_fake, **settings)
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=config.openai_base_url, max_retries=0)
    store = MemoryStore(retention_seconds=60)
    assistant = Assistant(name="default", model="gpt-test", tools=("partner",))
    backends = Backends(
        settings=config, assistants=Assistants({"default": assistant}, "default"), default_client=client
    )
    await backends.resolve()
    engine = Engine(
        store=store,
        settings=config,
        tools=load_registry(config),
        knowledge=Knowledge(backends=backends, store=store, settings=config),
        backends=backends,
        retry_backoff=0,
    )
    snapshot = TurnSnapshot(items=[], server_state=None, channel_settings={}, thread_files=[])
    try:
        run = engine.run(
            thread=THREAD,
            messages=[QUESTION],
            assistant=assistant,
            approve=never_approve,
            state=snapshot,
        )
        # StateChange events (what the store keeps of the thread) come before the end.
        return [event async for event in run if not isinstance(event, StateChange)]
    finally:
        await engine.close()
        await backends.close()
        await client.close()


async def test_an_answer_ends_with_done(slack, openai_fake):
    openai_fake.enqueue(Text(["Hel", "lo"]))
    events = await events_of(slack, openai_fake)
    assert isinstance(events[-1], Done) and events[-1].text == "Hello"
    assert not any(isinstance(e, Failed) for e in events)


async def test_an_openai_error_ends_with_failed_not_an_exception(slack, openai_fake):
    # (the engine asks once more when a response fails before any output)
    openai_fake.enqueue(HttpError(500, "server_error", "boom"), HttpError(500, "server_error", "boom"))
    events = await events_of(slack, openai_fake)
    assert [type(e) for e in events] == [Failed]
    assert events[0].kind == "openai_unavailable"


async def test_too_many_tool_rounds_end_with_failed_not_an_exception(slack, openai_fake):
    openai_fake.default = lambda body: Text([], calls=[("partner", {})])
    events = await events_of(
        slack, openai_fake, ASSIST_BOT_TOOL_MODULES="tests.support.acme_tools", ASSIST_BOT_TOOL_MAX_ROUNDS=2
    )
    assert isinstance(events[-1], Failed) and events[-1].kind == "tool_rounds"
    assert sum(isinstance(e, (Done, Failed)) for e in events) == 1
