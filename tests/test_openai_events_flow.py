"""What a person sees in Slack for each way an OpenAI response can go (issue 9 item 4,
issue 12 item 6): over the real wire, the bot against the fake OpenAI's SSE streams."""

from __future__ import annotations

import asyncio
import logging

import pytest

from assist_bot import texts
from assist_bot.engine.turns import RETRY_BACKOFF
from tests.fakes.openai import (
    CONTEXT_WINDOW_MESSAGE,
    QUOTA_MESSAGE,
    RATE_LIMIT_MESSAGE,
    Cut,
    Failed,
    HttpError,
    Incomplete,
    Recorded,
    Refusal,
    StreamError,
    Text,
)
from tests.fakes.slack import mention, wait_for
from tests.support.bot import running_bot
from tests.support.flows import mention_and_wait_for_reply, reply_containing
from tests.support.waits import RecordedWaits

pytestmark = pytest.mark.timeout(60)

# Footnotes, sandbox links and tool activity in the message text are the edit path's; native
# streaming puts sources in the stop's blocks and tool steps in task_update chunks
# (tests/slack/test_streaming.py).
EDIT = {"ASSIST_BOT_STREAM_MODE": "edit"}


async def answer(slack, bot, text: str, *, expected: str, user: str = "U1"):
    """Mention the bot; wait for its reply in the thread to contain `expected`."""
    event = await mention_and_wait_for_reply(bot, slack, "C1", user, text, containing=expected)
    (reply,) = slack.thread_replies("C1", event["ts"])
    return reply


async def test_a_refusal_is_shown_as_the_models_words(slack, openai_fake):
    openai_fake.enqueue(Refusal(["I'm sorry, ", "I can't help with that."]))
    async with running_bot(slack, openai_fake) as bot:
        reply = await answer(slack, bot, "do something bad", expected="help with that")
    assert reply.text == "I'm sorry, I can't help with that."
    assert texts.EMPTY_ANSWER not in reply.text


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (Incomplete("max_output_tokens", ["The first half of a long"]), "length_limit"),
        (Incomplete("content_filter", ["The first half of a long"]), "content_filter"),
        (Failed("rate_limit_exceeded", RATE_LIMIT_MESSAGE, ["The first half of a long"]), "openai_rate_limited"),
        (Failed("insufficient_quota", QUOTA_MESSAGE, ["The first half of a long"]), "openai_quota"),
        (Failed("server_error", "The model failed.", ["The first half of a long"]), "openai_unavailable"),
        (StreamError("Something went wrong", "server_error", ["The first half of a long"]), "openai_unavailable"),
        (Cut(["The first half of a long"]), "stream_cut"),
        (Cut(["The first half of a long"], reset=True), "stream_cut"),
    ],
    ids=["length", "filter", "rate-limit", "quota", "server-error", "error-event", "cut", "reset"],
)
async def test_an_answer_that_stops_keeps_its_text_with_a_note_naming_the_cause(
    slack, openai_fake, caplog, reply, kind
):
    openai_fake.enqueue(reply)
    caplog.set_level(logging.INFO)
    async with running_bot(slack, openai_fake) as bot:
        bot.bot.engine.sleep = waits = RecordedWaits()
        shown = await answer(slack, bot, "write a lot", expected=texts.failure(kind))
    assert shown.text == f"The first half of a long\n\n{texts.failure(kind)}"
    assert len(openai_fake.response_requests) == 1 and waits.waits == []  # text was shown: no retry
    # Named in the log too, never as a crash; the API's own words stay out of Slack.
    assert "failed unexpectedly" not in caplog.text and "Traceback" not in caplog.text
    assert "org-AAA" not in shown.text and "billing" not in shown.text.replace(texts.failure(kind), "")


@pytest.mark.parametrize(
    "first",
    [
        Cut([]),
        Cut([], reset=True),
        Failed("server_error", "The model failed."),
        Failed("rate_limit_exceeded", RATE_LIMIT_MESSAGE),
        StreamError("Something went wrong", "server_error"),
        HttpError(503, None, "The engine is currently overloaded."),
    ],
    ids=["cut", "reset", "server-error", "rate-limit", "error-event", "http-503"],
)
async def test_a_response_that_failed_before_any_output_is_asked_once_more(slack, openai_fake, first):
    openai_fake.enqueue(first, Text(["Second time lucky."]))
    async with running_bot(slack, openai_fake) as bot:
        bot.bot.engine.sleep = waits = RecordedWaits()
        shown = await answer(slack, bot, "try", expected="lucky")
    assert shown.text == "Second time lucky."
    assert len(openai_fake.response_requests) == 2 and waits.waits == [RETRY_BACKOFF]


@pytest.mark.parametrize(
    "first",
    [
        Failed("insufficient_quota", QUOTA_MESSAGE),
        Failed("context_length_exceeded", CONTEXT_WINDOW_MESSAGE),
        Incomplete("content_filter"),
    ],
    ids=["quota", "context-window", "filter"],
)
async def test_failures_that_a_retry_cannot_fix_are_not_retried(slack, openai_fake, first):
    openai_fake.enqueue(first, Text(["never sent"]))
    async with running_bot(slack, openai_fake) as bot:
        bot.bot.engine.sleep = RecordedWaits()
        await answer(slack, bot, "try", expected="⚠️")
    assert len(openai_fake.response_requests) == 1


async def test_web_search_sources_become_footnotes(slack, openai_fake):
    # The recorded answer (tests/fakes/openai_payloads/streams/pai-web-search-url-citation.sse).
    url = "https://www.britannica.com/place/Mount-Columbia?utm_source=openai"
    text = f"The tallest mountain in Alberta is **Mount Columbia** (3,747 m / 12,294 ft). ([britannica.com]({url}))"
    citation = {"type": "url_citation", "start_index": 77, "end_index": 162, "title": "Mount Columbia | Britannica"}
    openai_fake.enqueue(Text.of(text, 4, tools=["web_search"], annotations=[{**citation, "url": url}]))
    async with running_bot(slack, openai_fake, **EDIT) as bot:
        reply = await answer(slack, bot, "tallest mountain in Alberta?", expected="Sources")
    assert reply.text.endswith(f"*Sources*\n[1] <{url}|Mount Columbia | Britannica>")
    assert "*Mount Columbia*" in reply.text


async def test_a_sandbox_link_points_at_the_file_uploaded_into_the_thread(slack, openai_fake):
    container, chart = "cntr_plot", b"\x89PNG plot"

    def draw(body):
        cfile = openai_fake.add_container_file(container, "y_eq_x_squared_plot.png", chart)
        text = "Here is the chart. [Download the chart](sandbox:/mnt/data/y_eq_x_squared_plot.png)"
        note = {"type": "container_file_citation", "container_id": container, "file_id": cfile}
        note |= {"filename": "y_eq_x_squared_plot.png", "start_index": 19, "end_index": len(text)}
        return Text.of(text, 3, container_id=container, annotations=[note])

    openai_fake.enqueue(draw)
    async with running_bot(slack, openai_fake, **EDIT) as bot:
        reply = await answer(slack, bot, "plot y = x^2", expected="|Download the chart>")
        (upload,) = slack.uploads
    assert upload.content == chart
    (hosted,) = [f for f in slack.files.values() if f["id"] == upload.file_id]
    assert reply.text == f"Here is the chart. <{hosted['permalink']}|Download the chart>"
    assert all("sandbox:" not in text for text in reply.history)


@pytest.mark.parametrize(
    ("tool", "status"),
    [
        ("web_search", texts.tool_activity("web_search")),
        ("mcp", texts.tool_activity("mcp", "deepwiki: ask_question")),
        ("reasoning", texts.tool_activity("reasoning")),
        ("file_search", texts.tool_activity("file_search")),
    ],
)
async def test_reasoning_and_hosted_tools_show_while_they_run(slack, openai_fake, tool, status):
    hold = asyncio.Event()
    openai_fake.enqueue(Text(["All done."], tools=[tool], hold=hold))
    async with running_bot(slack, openai_fake, **EDIT) as bot:
        event = mention("C1", "U1", "work hard")
        await bot.send(event)
        await reply_containing(slack, "C1", event["ts"], status)
        hold.set()
        await wait_for(lambda: slack.thread_replies("C1", event["ts"])[0].text == "All done.", message="the answer")


async def test_usage_is_logged_per_turn_without_content(slack, openai_fake, caplog):
    openai_fake.enqueue(Text(["A secret answer about payroll."], cached_tokens=5))
    caplog.set_level(logging.INFO, logger="assist_bot.engine.turns")
    async with running_bot(slack, openai_fake) as bot:
        await answer(slack, bot, "confidential payroll question", expected="payroll.")
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("usage ")]
    usage = openai_fake.responses[next(iter(openai_fake.responses))]["usage"]
    assert line == (
        f"usage team=T1 channel=C1 assistant=default input_tokens={usage['input_tokens']} cached_tokens=5 "
        f"output_tokens={usage['output_tokens']}"
    )
    assert "payroll" not in caplog.text


# -- recorded real streams, replayed byte for byte ------------------------------------------
async def test_a_recorded_web_search_answer_gets_its_footnote(slack, openai_fake):
    openai_fake.enqueue(Recorded("pai-web-search-url-citation.sse"))
    async with running_bot(slack, openai_fake, **EDIT) as bot:
        reply = await answer(slack, bot, "tallest mountain in Alberta?", expected="Sources")
    url = "https://www.britannica.com/place/Mount-Columbia?utm_source=openai"
    assert reply.text.startswith("The tallest mountain in Alberta is *Mount Columbia* (3,747 m / 12,294 ft).")
    assert reply.text.endswith(f"*Sources*\n[1] <{url}|Mount Columbia | mountain, Alberta, Canada | Britannica>")


async def test_a_recorded_code_interpreter_answer_links_the_chart_it_drew(slack, openai_fake):
    container = "cntr_68dd936a4cfc81908bdd4f2a2f542b5c0a0e691ad2bfd833"  # as the recording names them
    chart = b"\x89PNG the parabola"
    openai_fake.add_container_file(
        container, "y_eq_x_squared_plot.png", chart, "cfile_68dd9381192c81918f24ee3f0294cce6"
    )
    openai_fake.add_container_file(container, "cfile_68dd937c234081919ee5238a16b4fd87.png", b"\x89PNG inline")
    openai_fake.enqueue(Recorded("pai-code-interpreter-image.sse"))
    async with running_bot(slack, openai_fake, **EDIT) as bot:
        reply = await answer(slack, bot, "plot y = x^2", expected="|Download the chart>")
    (plot,) = [u for u in slack.uploads if u.filename == "y_eq_x_squared_plot.png"]
    assert plot.content == chart
    assert f"/{plot.file_id}/y_eq_x_squared_plot.png|Download the chart>" in reply.text
    assert all("sandbox:" not in text for text in reply.history)
