"""The stream translator against recorded real events and streams (copied into
tests/fakes/openai_payloads): every terminal event, refusals, activity, usage, sources."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest

from assist_bot import texts
from assist_bot.engine.sse import sse_events
from assist_bot.engine.stream import Round, translate
from assist_bot.errors import TurnError
from assist_bot.events import Failed, TextDelta, ToolActivity, UsageReport

PAYLOADS = Path(__file__).parent.parent / "fakes" / "openai_payloads"


def recorded_event(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / "events" / name).read_text())


async def _iterate(events: Iterable[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for event in events:
        yield event


async def recorded_stream(name: str) -> AsyncIterator[dict[str, Any]]:
    async def lines() -> AsyncIterator[str]:
        for line in (PAYLOADS / "streams" / name).read_text().split("\n"):
            yield line.rstrip("\r")

    async for event in sse_events(lines()):
        yield event


async def run(events: AsyncIterator[dict[str, Any]]) -> tuple[list[Any], Round]:
    into = Round()
    return [event async for event in translate(events, into)], into


DELTA = {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0}


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        (recorded_event("codex-response-failed-rate-limit.json"), "openai_rate_limited"),
        (recorded_event("codex-response-failed-quota.json"), "openai_quota"),
        (recorded_event("codex-response-failed-context-window.json"), "context_window"),
        (recorded_event("openapi-ResponseFailedEvent.json"), "openai_unavailable"),  # code server_error
        (recorded_event("openapi-ResponseErrorEvent.json"), "model_failed"),  # an unknown code
        ({**recorded_event("openapi-ResponseErrorEvent.json"), "code": "rate_limit_exceeded"}, "openai_rate_limited"),
        (recorded_event("openapi-ResponseIncompleteEvent.json"), "length_limit"),  # reason "max_tokens"
        (
            {"type": "response.incomplete", "response": {"incomplete_details": {"reason": "max_output_tokens"}}},
            "length_limit",
        ),
        (
            {"type": "response.incomplete", "response": {"incomplete_details": {"reason": "content_filter"}}},
            "content_filter",
        ),
        ({"type": "response.incomplete", "response": {"incomplete_details": None}}, "incomplete"),
    ],
)
async def test_every_terminal_failure_is_named_after_the_partial_text(event, kind):
    events, into = await run(_iterate([{**DELTA, "delta": "Half an ans"}, event]))
    assert events[0] == TextDelta("Half an ans")
    assert isinstance(events[-1], Failed) and events[-1].kind == kind
    assert texts.failure(kind) != texts.failure("unexpected")  # each kind has its own words
    assert into.text == ["Half an ans"] and into.produced


async def test_completed_is_the_only_success_and_carries_the_usage():
    events, into = await run(recorded_stream("pai-conversation.sse"))
    assert not any(isinstance(e, Failed) for e in events)
    assert into.response_id.startswith("resp_")
    assert (into.usage.input_tokens, into.usage.cached_tokens, into.usage.output_tokens) == (21, 0, 3)


async def test_a_stream_that_ends_without_a_terminal_event_is_cut():
    with pytest.raises(TurnError) as cut:
        await run(_iterate([{**DELTA, "delta": "Half"}]))
    assert cut.value.kind == "stream_cut"


async def test_a_refusal_is_shown_as_the_models_words():
    delta = recorded_event("openapi-ResponseRefusalDeltaEvent.json")
    done = recorded_event("openapi-ResponseRefusalDoneEvent.json")
    completed = recorded_event("openapi-ResponseCompletedEvent.json")
    events, into = await run(_iterate([delta, done, completed]))
    assert [e for e in events if not isinstance(e, UsageReport)] == [TextDelta("refusal text so far")]
    assert into.text == ["refusal text so far"]


async def test_web_search_shows_activity_and_collects_url_citations():
    events, into = await run(recorded_stream("pai-web-search-url-citation.sse"))
    activity = [e for e in events if isinstance(e, ToolActivity)]
    assert [(a.kind, a.active) for a in activity][:2] == [("web_search", True), ("web_search", False)]
    (cited,) = [a for a in into.annotations if a["type"] == "url_citation"]
    assert cited["url"].startswith("https://www.britannica.com/")


@pytest.mark.parametrize(
    ("stream", "kinds"),
    [
        ("pai-reasoning-summary.sse", {"reasoning"}),
        ("pai-mcp-call.sse", {"mcp", "mcp_list_tools"}),
        ("pai-code-interpreter-image.sse", {"reasoning", "code_interpreter"}),
        ("pai-file-search-citation.sse", {"file_search"}),
    ],
)
async def test_reasoning_and_hosted_tools_show_while_they_run(stream, kinds):
    events, _ = await run(recorded_stream(stream))
    started = {e.kind for e in events if isinstance(e, ToolActivity) and e.active}
    assert kinds <= started
    # Every step that starts also ends, so a status is never left behind.
    ended = {e.kind for e in events if isinstance(e, ToolActivity) and not e.active}
    assert started == ended


async def test_mcp_activity_names_the_server_and_tool():
    events, _ = await run(recorded_stream("pai-mcp-call.sse"))
    (call,) = {e.name for e in events if isinstance(e, ToolActivity) and e.kind == "mcp" and e.active}
    assert call.startswith("deepwiki: ")


async def test_code_interpreter_files_are_collected_for_upload():
    _, into = await run(recorded_stream("pai-code-interpreter-image.sse"))
    assert into.containers == {"cntr_68dd936a4cfc81908bdd4f2a2f542b5c0a0e691ad2bfd833"}
    cited = [a["filename"] for a in into.annotations if a["type"] == "container_file_citation"]
    assert "y_eq_x_squared_plot.png" in cited
    assert "sandbox:/mnt/data/y_eq_x_squared_plot.png" in "".join(into.text)


async def test_every_ending_response_reports_its_usage_for_the_ledger():
    events, _ = await run(recorded_stream("pai-conversation.sse"))
    (report,) = [e for e in events if isinstance(e, UsageReport)]
    assert (report.input_tokens, report.output_tokens) == (21, 3) and report.model
    # A failed response's tokens are billed too: reported before the failure.
    failed = recorded_event("codex-response-failed-rate-limit.json")
    events, _ = await run(_iterate([{**DELTA, "delta": "Half"}, failed]))
    assert isinstance(events[-2], UsageReport) and isinstance(events[-1], Failed)
