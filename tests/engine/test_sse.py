from assist_bot.engine.sse import sse_events


async def lines(*items):
    for item in items:
        yield item


async def collect(*items):
    return [event async for event in sse_events(lines(*items))]


async def test_events_are_the_json_of_their_data_lines():
    got = await collect(
        "event: response.created",
        'data: {"type": "response.created"}',
        "",
        ": a comment",
        "event: response.output_text.delta",
        'data: {"type": "d", "delta": "hi"}',
        "",
    )
    assert got == [{"type": "response.created"}, {"type": "d", "delta": "hi"}]


async def test_multi_line_data_is_joined_and_done_ends_the_stream():
    got = await collect('data: {"type":', 'data: "x"}', "", "data: [DONE]", "", 'data: {"type": "late"}', "")
    assert got == [{"type": "x"}]


async def test_a_last_event_without_a_blank_line_still_counts():
    assert await collect('data: {"type": "end"}') == [{"type": "end"}]
