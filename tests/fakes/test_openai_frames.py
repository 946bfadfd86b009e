"""The fake OpenAI's frames: checked against the SDK's event models, and covering the event
types of the recorded real streams (the rest are replayed with `Recorded`)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import openai
import pytest

from .openai import Cut, Failed, FakeOpenAI, Incomplete, Recorded, Refusal, StreamError, Text
from .openai_frames import UnknownShape, frame

STREAMS = Path(__file__).parent / "openai_payloads" / "streams"
DELTA = {"type": "response.output_text.delta", "sequence_number": 1, "item_id": "msg_1", "output_index": 0}
DELTA |= {"content_index": 0, "delta": "Hi", "logprobs": []}

# Recorded event types the fake does not synthesise; tests that need them replay a recording.
REPLAYED_ONLY = {
    "response.queued",
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_part.done",
    "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done",
    "response.reasoning_text.delta",
    "response.reasoning_text.done",
    "response.code_interpreter_call_code.delta",
    "response.code_interpreter_call_code.done",
    "response.mcp_list_tools.in_progress",
    "response.mcp_list_tools.completed",
    "response.mcp_call_arguments.delta",
    "response.mcp_call_arguments.done",
}


def test_a_known_event_passes():
    assert frame(DELTA).startswith(b"event: response.output_text.delta\ndata: {")


@pytest.mark.parametrize(
    "bad",
    [
        {**DELTA, "type": "response.output_text.delte"},  # a type the SDK does not know
        {k: v for k, v in DELTA.items() if k != "item_id"},  # a required field missing
        {**DELTA, "name": "get_weather"},  # a field the SDK does not declare
        {**DELTA, "output_index": "zero"},  # a wrong type
    ],
)
def test_a_shape_the_sdk_does_not_know_cannot_slip_in(bad):
    with pytest.raises(UnknownShape):
        frame(bad)


async def _types_streamed(fake: FakeOpenAI, reply) -> set[str]:
    fake.enqueue(reply)
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=fake.base_url, max_retries=0)
    seen: set[str] = set()
    try:
        async with client.responses.with_streaming_response.create(model="m", input="x", stream=True) as response:
            async for line in response.iter_lines():
                if line.startswith("data: "):
                    seen.add(json.loads(line[6:])["type"])
    except Exception:  # a Cut or reset ends the body early: what arrived is what counts
        pass
    return seen


async def test_the_fake_produces_every_recorded_event_type_but_the_replayed_ones():
    recorded = {
        json.loads(line[5:])["type"]
        for path in STREAMS.glob("*.sse")
        for line in path.read_text().splitlines()
        if line.startswith("data:") and not line[5:].strip().startswith("[DONE]")
    }
    replies = [
        Text(["a", "b"], tools=["reasoning", "web_search", "file_search", "code_interpreter", "mcp"]),
        Text(["see"], annotations=[{"type": "url_citation", "url": "https://e.com", "title": "E"} | _span(0, 3)]),
        Text([], calls=[("get_weather", {"city": "Paris"})]),
        Refusal(["no"]),
        Failed(after_chunks=["x"]),
        Incomplete(after_chunks=["x"]),
        StreamError("boom"),
        Cut(["x"]),
    ]
    async with asyncio.timeout(20), FakeOpenAI() as fake:
        produced = set().union(*[await _types_streamed(fake, reply) for reply in replies])
        replayed = await _types_streamed(fake, Recorded("pai-reasoning-summary.sse"))
    assert recorded - REPLAYED_ONLY <= produced, recorded - REPLAYED_ONLY - produced
    assert "response.reasoning_summary_text.delta" in replayed  # the rest come as recorded


def _span(start: int, end: int) -> dict:
    return {"start_index": start, "end_index": end}
