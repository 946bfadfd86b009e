"""Message shortcuts ("Ask assist-bot about this", "Summarize this thread") and the App
Home tab, over the real wire: interactive payloads as Slack posts them (signed HTTP, or
the Socket Mode WebSocket), answers checked in what Slack and OpenAI received."""

from __future__ import annotations

import json
import uuid

import pytest

from assist_bot.slack import shortcuts
from tests.fakes.openai import input_texts
from tests.fakes.slack import new_ts, wait_for
from tests.support.bot import running_bot
from tests.support.flows import opened_modal

pytestmark = pytest.mark.timeout(60)


def message_action(slack, callback_id: str, *, channel: str, message: dict, user: str = "U1") -> dict:
    # The shape of bolt-python's test_shortcut message_action payload.
    return {
        "type": "message_action",
        "token": "verification_token",
        "action_ts": new_ts(),
        "team": {"id": "T1", "domain": "acme"},
        "user": {"id": user, "name": f"user-{user}", "team_id": "T1"},
        "channel": {"id": channel, "name": f"chan-{channel}"},
        "callback_id": callback_id,
        "trigger_id": f"111.222.{uuid.uuid4().hex}",
        "message_ts": message["ts"],
        "message": {"type": "message", "team": "T1", **message},
        "response_url": slack.response_url(),
    }


def view_submission(view: dict, question: str, *, user: str = "U1") -> dict:
    return {
        "type": "view_submission",
        "team": {"id": "T1", "domain": "acme"},
        "user": {"id": user, "username": f"user-{user}", "team_id": "T1"},
        "api_app_id": "A1",
        "token": "verification_token",
        "trigger_id": f"111.222.{uuid.uuid4().hex}",
        "view": {
            **view,
            "id": "V1",
            "state": {"values": {"question": {"question": {"type": "plain_text_input", "value": question}}}},
        },
    }


def seed_thread(slack, channel: str, replies: int, *, width: int = 0) -> dict:
    root = slack.seed_message(channel, "U2", "Should we move the launch to Friday?")
    for n in range(replies):
        slack.seed_message(channel, f"U{3 + n % 3}", f"reply {n}" + "." * width, thread_ts=root.ts)
    return {"ts": root.ts, "text": root.text, "user": "U2", "thread_ts": root.ts}


async def test_summarize_reads_the_thread_and_answers_in_it_over_socket_mode(slack, openai_fake):
    thread = seed_thread(slack, "C1", 2)
    last_reply = slack.messages[-1]
    async with running_bot(slack, openai_fake, socket_mode=True):
        # Used on a reply: the answer still goes to the thread's root.
        target = {"ts": last_reply.ts, "text": last_reply.text, "user": "U4", "thread_ts": thread["ts"]}
        envelope = await slack.push_socket_payload(
            "interactive", message_action(slack, shortcuts.SUMMARIZE_CALLBACK, channel="C1", message=target)
        )
        await slack.wait_ack(envelope)
        reply = await wait_for(lambda: slack.thread_replies("C1", thread["ts"]))
        await wait_for(lambda: "Summarize" in reply[0].text)
    [request] = openai_fake.response_requests
    context, question = input_texts(request)
    assert question == f"[user-U1 (U1)] {shortcuts.SUMMARIZE_QUESTION}"
    assert "<#C1>" in context
    lines = context.splitlines()
    assert lines[1:] == [
        "[user-U2] Should we move the launch to Friday?",
        "[user-U3] reply 0",
        "[user-U4] reply 1",
    ]
    [read] = slack.calls_to("conversations.replies")
    assert read.args["ts"] == thread["ts"] and read.args["limit"] == str(shortcuts.PAGE_SIZE)


async def test_a_long_thread_is_read_in_pages_and_cut_to_the_root_and_latest_replies(slack, openai_fake):
    thread = seed_thread(slack, "C1", 450, width=100)  # ~48,000 characters: more than MAX_CHARS
    async with running_bot(slack, openai_fake) as bot:
        status, _ = await bot.post_payload(
            message_action(slack, shortcuts.SUMMARIZE_CALLBACK, channel="C1", message=thread)
        )
        assert status == 200
        await wait_for(lambda: slack.thread_replies("C1", thread["ts"]))
    reads = slack.calls_to("conversations.replies")
    assert len(reads) == 3  # 1 root + 450 replies in pages of 200
    assert [r.args.get("cursor") for r in reads] == [None, "200", "400"]
    context = input_texts(openai_fake.response_requests[0])[0]
    assert len(context) <= shortcuts.MAX_CHARS + 500
    assert "Should we move the launch to Friday?" in context and "reply 449." in context
    assert "reply 0." not in context and "earlier replies left out" in context
    assert context.count("Should we move the launch") == 1  # no page repeated the root


async def test_ask_opens_a_form_and_answers_the_question_in_the_thread(slack, openai_fake):
    thread = seed_thread(slack, "C1", 1)
    async with running_bot(slack, openai_fake) as bot:
        status, _ = await bot.post_payload(message_action(slack, shortcuts.ASK_CALLBACK, channel="C1", message=thread))
        assert status == 200
        view = await opened_modal(slack)
        assert view["callback_id"] == shortcuts.ASK_VIEW
        assert slack.calls_to("conversations.replies") == []  # read only once the question is asked
        status, body = await bot.post_payload(view_submission(view, "   "))
        assert status == 200 and json.loads(body)["response_action"] == "errors"
        status, _ = await bot.post_payload(view_submission(view, "Who disagreed?"))
        assert status == 200
        await wait_for(lambda: slack.thread_replies("C1", thread["ts"]))
    [request] = openai_fake.response_requests
    assert input_texts(request)[1] == "[user-U1 (U1)] Who disagreed?"
    assert "[user-U3] reply 0" in input_texts(request)[0]


async def test_a_thread_the_bot_cannot_read_gets_a_private_note_and_no_answer(slack, openai_fake):
    slack.channels["C9"] = {"is_member": False}
    thread = seed_thread(slack, "C9", 1)
    async with running_bot(slack, openai_fake) as bot:
        action = message_action(slack, shortcuts.SUMMARIZE_CALLBACK, channel="C9", message=thread)
        await bot.post_payload(action)
        [note] = await wait_for(lambda: slack.responses)
    assert note["key"] == action["response_url"].rsplit("/", 1)[1]
    assert note["response_type"] == "ephemeral" and "not_in_channel" in note["text"] and "/invite" in note["text"]
    assert openai_fake.response_requests == [] and slack.bot_messages() == []


async def test_the_home_tab_shows_assistants_tools_for_this_person_and_how_to_start(slack, openai_fake, monkeypatch):
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")  # send_email is offered only with a mail server
    monkeypatch.setenv("SMTP_FROM", "bot@example.com")

    def opened(user: str) -> dict:
        return {"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home", "event_ts": new_ts()}

    async with running_bot(slack, openai_fake, ASSIST_BOT_TOOL_MODULES="tests.support.acme_tools") as bot:
        assert await bot.send(opened("U1")) == 200
        assert await bot.send(opened("UVIP")) == 200
        await wait_for(lambda: len(slack.home_views) == 2)
        # The Messages tab is the agent view's, not the Home tab's.
        await bot.send(
            {"type": "app_home_opened", "user": "U5", "channel": "D5", "tab": "messages", "event_ts": new_ts()}
        )
        await wait_for(lambda: slack.calls_to("assistant.threads.setSuggestedPrompts"))
    assert set(slack.home_views) == {"U1", "UVIP"}
    assert all(c.error is None for c in slack.calls_to("views.publish"))
    everyone = json.dumps(slack.home_views["U1"])
    assert "*default* (the default)" in everyone and "gpt-5.4-mini" in everyone
    assert "`/weather` *get_weather*" in everyone and "`/email` *send_email* (asks before it runs)" in everyone
    assert "Summarize this thread" in everyone and "/assist help" in everyone
    assert "/vip" not in everyone  # allow_users=["UVIP"]
    assert "`/vip` *vip_only*" in json.dumps(slack.home_views["UVIP"])
