"""The state seam on its own: what each mode sends, and what it asks the store to keep."""

from __future__ import annotations

import pytest

from assist_bot.assistants import Assistant
from assist_bot.engine.backends import Backend
from assist_bot.engine.state import (
    DEFAULT_HISTORY_TOKENS,
    LocalState,
    ResponseChainState,
    context_plan,
    estimate_tokens,
)
from assist_bot.engine.stream import Round
from assist_bot.engine.tooling import FunctionCall
from assist_bot.errors import SettingsError
from assist_bot.settings import load_settings


def user(text: str) -> dict:
    return {"role": "user", "content": [{"type": "input_text", "text": text}]}


CALL = {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"}
OUTPUT = {"type": "function_call_output", "call_id": "c1", "output": "x" * 400}


def test_local_drops_whole_turns_so_no_tool_output_loses_its_call():
    history = [user("old question"), CALL, OUTPUT, {"role": "assistant", "content": "old answer"}]
    history += [user("recent question"), {"role": "assistant", "content": "recent answer"}]
    # Room for the recent turn and the new message, not for the old turn's call and output.
    budget = sum(estimate_tokens(item) for item in history[4:]) + estimate_tokens(user("new")) + 10
    state = LocalState(history, budget=budget)
    state.next_round([user("new")])
    sent = state.fields()["input"]
    assert sent == [*history[4:], user("new")] and state.fields()["store"] is False
    state.answered(Round(text=["fine"]))
    state.end(completed=True)
    [change] = state.changes()
    assert change.history_drop == 4 and change.history == (user("new"), {"role": "assistant", "content": "fine"})


def test_a_failed_local_turn_keeps_only_what_people_said():
    state = LocalState([], budget=10_000)
    state.next_round([user("q")])
    state.answered(Round(text=["let me look"], calls=[FunctionCall("c1", "lookup", "{}")]))
    state.next_round([{"type": "function_call_output", "call_id": "c1", "output": "ok"}])
    state.end(completed=False)
    [change] = state.changes()
    assert change.history == (user("q"),)


def test_a_chain_names_the_previous_response_and_keeps_the_last_one():
    state = ResponseChainState("resp_old")
    state.next_round([user("q")])
    assert state.fields() == {"input": [user("q")], "previous_response_id": "resp_old"}
    state.answered(Round(response_id="resp_1", calls=[FunctionCall("c1", "lookup", "{}")]))
    state.next_round([OUTPUT])
    assert state.fields()["previous_response_id"] == "resp_1"  # the calls' outputs follow their response
    state.answered(Round(response_id="resp_2"))
    state.end(completed=True)
    assert [c.server_state for c in state.changes()] == ["resp_2"]


def test_a_failed_chain_keeps_the_old_pointer():
    state = ResponseChainState("resp_old")
    state.next_round([user("q")])
    state.answered(Round(response_id="resp_1", calls=[FunctionCall("c1", "lookup", "{}")]))
    state.end(completed=False)
    assert state.changes() == []


def test_an_unknown_state_mode_is_named(monkeypatch):
    monkeypatch.setenv("ASSIST_BOT_STATE", "sometimes")
    with pytest.raises(SettingsError, match="ASSIST_BOT_STATE is invalid"):
        load_settings(SLACK_BOT_TOKEN="xoxb-1", OPENAI_API_KEY="sk-1", SLACK_SIGNING_SECRET="s", _env_file=None)


def test_a_compaction_item_replaces_everything_before_it():
    history = [user("q1"), {"role": "assistant", "content": "a1"}]
    state = LocalState(history, budget=2_000)
    state.next_round([user("q2")])
    assert state.fields()["input"] == [*history, user("q2")]
    folded = {"type": "compaction", "encrypted_content": "opaque"}
    state.answered(Round(text=["a2"], calls=[FunctionCall("c1", "lookup", "{}")], compaction=folded))
    state.next_round([OUTPUT])
    assert state.fields()["input"] == [folded, {"role": "assistant", "content": "a2"}, CALL, OUTPUT]
    state.answered(Round(text=["done"]))
    state.end(completed=True)
    [change] = state.changes()
    assert change.history_drop == 2 and change.history[0] == folded


def test_the_guard_never_drops_the_latest_compaction():
    big = {"type": "compaction", "encrypted_content": "x" * 4000}
    state = LocalState([big, {"role": "assistant", "content": "a"}], budget=100)
    state.next_round([user("q")])
    assert state.fields()["input"][0] == big


async def test_after_a_mode_switch_the_other_modes_id_is_not_sent():
    from assist_bot.engine.state import ConversationState
    from assist_bot.store import ThreadKey

    chain = ResponseChainState("conv_from_before")
    chain.next_round([user("q")])
    assert "previous_response_id" not in chain.fields()
    conversation = ConversationState(None, ThreadKey("T1", "C1", "1.1"), "resp_from_before")  # type: ignore[arg-type]
    conversation.next_round([user("q")])
    assert conversation.fields()["conversation"] is None  # begin() makes a new one


def backend(state: str, *, server_context: bool, history_tokens: int | None = None) -> Backend:
    return Backend(None, state, False, history_tokens, "http://model", server_context)  # type: ignore[arg-type]


def test_context_decides_in_every_mode_and_the_default_is_only_named_to_servers_that_know_it():
    truncate, compact, off = (Assistant(name="a", model="m", context=c) for c in ("truncate", "compact", "off"))  # type: ignore[arg-type]
    conversation = backend("conversation", server_context=True)
    assert context_plan(truncate, conversation).fields == {"truncation": "auto"}
    assert context_plan(compact, conversation).fields == {"context_management": [{"type": "compaction"}]}
    assert context_plan(off, conversation).fields == {"truncation": "disabled"}
    # A local history on a server of our own: the bot truncates by itself, and names nothing.
    ollama = backend("local", server_context=False, history_tokens=500)
    assert context_plan(truncate, ollama) == type(context_plan(truncate, ollama))({}, 500)
    assert context_plan(off, ollama).fields == {} and context_plan(off, ollama).history_budget is None
    # On OpenAI too: truncation stays as a net behind the bot's own budget.
    openai = backend("local", server_context=True)
    assert context_plan(truncate, openai).fields == {"truncation": "auto"}
    assert context_plan(truncate, openai).history_budget == DEFAULT_HISTORY_TOKENS


def test_a_compacting_local_history_uses_its_budget_as_threshold_and_drops_turns_only_at_twice_it():
    plan = context_plan(
        Assistant(name="a", model="m", context="compact"), backend("local", server_context=False, history_tokens=80)
    )
    assert plan.fields == {"context_management": [{"type": "compaction", "compact_threshold": 80}]}
    assert plan.history_budget == 160
    own = Assistant(name="a", model="m", context="compact", compact_threshold=300)
    assert context_plan(own, backend("local", server_context=True)).history_budget == 600


def test_with_context_off_a_local_history_drops_nothing():
    history = [user("q" + "x" * 4000), {"role": "assistant", "content": "a" * 4000}] * 5
    state = LocalState(history, budget=None)
    state.next_round([user("q")])
    assert state.fields()["input"] == [*history, user("q")]
