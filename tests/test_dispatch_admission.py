"""Admission under ASSIST_BOT_MAX_CONCURRENT_TURNS: a turn waiting for Approve/Decline
holds no slot, and slots go round workspaces and people, not first come first served."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from assist_bot.admission import Admission
from assist_bot.events import ApprovalRequest, Decision, Done, TurnEvent
from assist_bot.store.memory import MemoryStore
from tests.fakes.slack import wait_for
from tests.support.dispatching import (
    BOUND,
    RecordingReplies,
    ScriptedRunner,
    Turn,
    answer_when_opened,
    dispatcher,
    ended,
    idle,
    inbound,
)

pytestmark = pytest.mark.timeout(20)

EMAIL = ApprovalRequest(tool="send_email", description="", arguments={"to": "a@example.com"}, requester="U1")


async def asks_then_answers(turn: Turn) -> AsyncIterator[TurnEvent]:
    if turn.texts[0].startswith("email"):
        decision = await turn.approve(EMAIL)
        yield Done(f"approved={decision.approved}")
    else:
        yield Done(" + ".join(turn.texts))


async def test_a_turn_waiting_for_approval_frees_its_slot_and_resumes_after_the_decision():
    store = MemoryStore(retention_seconds=60)
    runner, replies = ScriptedRunner(asks_then_answers), RecordingReplies()
    d = dispatcher(store, runner, replies, max_concurrent_turns=1)
    await d.submit(inbound("email the summary", thread="1.1"))
    waiting = await replies.next_sink()
    await wait_for(lambda: waiting.asked, BOUND)
    # The only slot is free while the approval waits: another thread is answered.
    await d.submit(inbound("what time is it?", thread="2.2", user="U2"))
    other = await ended(await replies.next_sink())
    assert other.finished.text == "what time is it?"
    assert waiting.finished is None
    waiting.decision.set_result(Decision(approved=True, by="U1"))
    assert (await ended(waiting)).finished.text == "approved=True"
    await idle(d)


async def test_a_resumed_turn_waits_for_a_free_slot_before_it_goes_on():
    store = MemoryStore(retention_seconds=60)
    runner = ScriptedRunner()

    async def script(turn: Turn) -> AsyncIterator[TurnEvent]:
        if turn.texts[0].startswith("email"):
            await turn.approve(EMAIL)
            yield Done("sent")
        else:
            async for event in answer_when_opened(turn):
                yield event

    runner.script = script
    replies = RecordingReplies()
    d = dispatcher(store, runner, replies, max_concurrent_turns=1)
    await d.submit(inbound("email it", thread="1.1"))
    asking = await replies.next_sink()
    await runner.next_turn()
    await d.submit(inbound("slow question", thread="2.2", user="U2"))
    slow = await runner.next_turn()  # admitted while the approval waits
    asking.decision.set_result(Decision(approved=True, by="U1"))
    for _ in range(50):  # room for a wrong resumption to show up
        await asyncio.sleep(0)
    assert asking.finished is None  # the slot is the slow turn's until it ends
    slow.gate.set()
    assert (await ended(asking)).finished.text == "sent"
    await idle(d)


async def test_one_users_backlog_does_not_delay_another_users_or_workspaces_turn():
    store = MemoryStore(retention_seconds=60)
    runner, replies = ScriptedRunner(), RecordingReplies()
    d = dispatcher(store, runner, replies, max_concurrent_turns=2)
    for n in range(12):  # one user opens twelve threads
        await d.submit(inbound(f"mine {n}", thread=f"{n}.0", user="U1"))
    first = [await runner.next_turn(), await runner.next_turn()]
    await d.submit(inbound("theirs", thread="50.0", user="U2"))
    await d.submit(inbound("other workspace", thread="60.0", user="U9", team="T2"))
    await wait_for(lambda: len(replies.sinks) == 14, BOUND)  # every placeholder shows at once
    first[0].gate.set()
    first[1].gate.set()
    admitted = {tuple((await runner.next_turn()).texts) for _ in range(2)}
    assert admitted == {("theirs",), ("other workspace",)}
    async with asyncio.timeout(BOUND):
        while len(runner.turns) < 14 or not all(t.gate.is_set() for t in runner.turns):
            for turn in runner.turns:
                turn.gate.set()
            await asyncio.sleep(0.01)
    await idle(d)
    assert sorted(s.finished.text for s in replies.sinks) == sorted(
        [f"mine {n}" for n in range(12)] + ["theirs", "other workspace"]
    )


# -- the admission on its own -------------------------------------------------------------
async def test_slots_go_to_the_workspace_then_the_user_with_fewest_running():
    admission = Admission(2)
    await admission.acquire("A", "u1")
    await admission.acquire("A", "u1")  # A's user u1 holds both slots
    order: list[tuple[str, str]] = []

    async def turn(team: str, user: str) -> None:
        await admission.acquire(team, user)
        order.append((team, user))

    arrivals = [("A", "u1")] * 3 + [("A", "u2"), ("B", "v1"), ("B", "v1"), ("B", "v2")]
    tasks = []
    for arrival in arrivals:
        tasks.append(asyncio.create_task(turn(*arrival)))
        await asyncio.sleep(0)
    admission.release("A", "u1")
    await asyncio.sleep(0)
    assert order == [("B", "v1")]  # B runs nothing: its turn comes first
    admission.release("A", "u1")
    await asyncio.sleep(0)
    assert order[1] == ("A", "u2")  # A and B run one each; A was served longest ago; u2 runs none
    admission.release("B", "v1")
    await asyncio.sleep(0)
    assert order[2] == ("B", "v2")  # B's user who has not run yet comes before v1's second
    running = [("A", "u2"), ("B", "v2")]
    while len(order) < len(arrivals) or running:
        admission.release(*running.pop(0))
        before = len(order)
        await asyncio.sleep(0)
        running.extend(order[before:])
    await asyncio.wait_for(asyncio.gather(*tasks), BOUND)
    assert sorted(order) == sorted(arrivals)
    assert (admission.running, admission.waiting) == (0, 0)


async def test_a_cancelled_waiter_leaves_the_line_and_a_granted_one_gives_its_slot_on():
    admission = Admission(1)
    await admission.acquire("A", "u1")
    gone = asyncio.create_task(admission.acquire("A", "u2"))
    nxt = asyncio.create_task(admission.acquire("B", "v1"))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    assert admission.waiting == 1
    admission.release("A", "u1")
    await asyncio.wait_for(nxt, BOUND)
    assert admission.running == 1
    # granted at the moment it is cancelled: the slot is not lost
    late = asyncio.create_task(admission.acquire("A", "u1"))
    await asyncio.sleep(0)
    admission.release("B", "v1")  # grants `late`
    late.cancel()
    await asyncio.gather(late, return_exceptions=True)
    assert (admission.running, admission.waiting) == (0, 0)
    await asyncio.wait_for(admission.acquire("C", "w1"), BOUND)


async def test_several_approvals_of_one_turn_set_its_slot_aside_once():
    admission = Admission(1)
    slot = admission.slot("A", "u1")
    async with slot:
        assert admission.running == 1
        both = asyncio.Event()
        inside = 0

        async def wait_for_person() -> None:
            nonlocal inside
            async with slot.set_aside():
                inside += 1
                if inside == 2:
                    both.set()
                await both.wait()

        await asyncio.wait_for(asyncio.gather(wait_for_person(), wait_for_person()), BOUND)
        assert slot.held and admission.running == 1
    assert admission.running == 0


# -- over the wire ------------------------------------------------------------------------
async def test_over_the_wire_an_unanswered_approval_does_not_block_other_threads(slack, openai_fake):
    """ASSIST_BOT_MAX_CONCURRENT_TURNS=1 and a turn waiting for a click: another user in
    another channel is answered meanwhile; the click resumes the first turn."""
    from assist_bot.assistants import Assistant, Assistants
    from tests.fakes.openai import Text, function_outputs
    from tests.fakes.slack import mention
    from tests.support import consent_tools
    from tests.support.bot import running_bot
    from tests.support.flows import approval_id, consent_prompt, reply_containing

    consent_tools.launched.clear()
    openai_fake.enqueue(
        Text([], calls=[("launch", {"target": "rocket"})]),  # the first turn asks to launch
        Text.echo,  # the second turn, while the first waits for a click
        lambda body: Text.of("Result: " + " ".join(function_outputs(body).values())),
    )
    ops = Assistants({"ops": Assistant(name="ops", model="gpt-5.4-mini", tools=("launch",))}, "ops")
    async with running_bot(
        slack,
        openai_fake,
        assistants=ops,
        ASSIST_BOT_TOOL_MODULES="tests.support.consent_tools",
        ASSIST_BOT_MAX_CONCURRENT_TURNS=1,
        ASSIST_BOT_ADMINS="UADMIN",
    ) as bot:
        first = mention("C1", "U1", "launch the rocket")
        await bot.send(first)
        prompt = await consent_prompt(slack, "C1")
        second = mention("C2", "U2", "hello there", team="T1")
        await bot.send(second)
        await reply_containing(slack, "C2", second["ts"], "You said: [user-U2 (U2)] hello")
        assert consent_tools.launched == []
        await bot.click(slack, "assist_approve", approval_id(prompt), user="UADMIN", channel="C1", message_ts=prompt.ts)
        await reply_containing(slack, "C1", first["ts"], "Result: launched rocket")
    assert consent_tools.launched == ["rocket"]


async def test_shares_keep_slots_free_for_other_people_and_workspaces():
    """Of ten slots one person may hold eight and one workspace nine: with every slot of
    the busy person still running, others are admitted at once, not when one ends."""
    admission = Admission(10)
    busy = [asyncio.create_task(admission.acquire("A", "u1")) for _ in range(12)]
    await asyncio.sleep(0)
    assert (admission.running, admission.waiting) == (8, 4)  # u1's share is full; two slots stay free
    await asyncio.wait_for(admission.acquire("A", "u2"), BOUND)  # a colleague: at once
    await asyncio.wait_for(admission.acquire("B", "v1"), BOUND)  # another workspace: at once
    third = asyncio.create_task(admission.acquire("C", "w1"))
    await asyncio.sleep(0)
    assert not third.done()  # all ten slots are taken now
    admission.release("A", "u1")
    await asyncio.wait_for(third, BOUND)  # the freed slot goes to the workspace running nothing
    for task in busy:
        task.cancel()
    await asyncio.gather(*busy, return_exceptions=True)


async def test_one_person_alone_may_use_every_slot_below_ten():
    admission = Admission(4)
    for _ in range(4):
        await asyncio.wait_for(admission.acquire("A", "u1"), BOUND)
    assert admission.running == 4


async def test_a_turn_cancelled_while_it_waits_to_resume_leaks_no_slot():
    admission = Admission(1)
    decided = asyncio.Event()
    slot = admission.slot("A", "u1")

    async def turn_with_approval() -> None:
        async with slot, slot.set_aside():
            await decided.wait()

    turn = asyncio.create_task(turn_with_approval())
    await wait_for(lambda: admission.running == 0 and not turn.done(), BOUND)  # set aside
    await asyncio.wait_for(admission.acquire("B", "v1"), BOUND)  # someone else streams meanwhile
    decided.set()
    await wait_for(lambda: admission.waiting == 1, BOUND)  # the turn stands in line to resume
    turn.cancel()  # shutdown
    await asyncio.gather(turn, return_exceptions=True)
    assert (admission.running, admission.waiting, slot.held) == (1, 0, False)
    admission.release("B", "v1")
    assert admission.running == 0
    await asyncio.wait_for(admission.acquire("C", "w1"), BOUND)
