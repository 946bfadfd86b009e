"""What reaches the bot from outside, and what it trusts: the workspace of a Slack
Connect event, forms and envelopes it does not expect, malformed and slow HTTP
clients, ids that are not ids, replayed commands, who may change a channel, and
the ack path that waits on nothing but the store (issues 9 and 11)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import pytest

from assist_bot.assistants import Assistant, Assistants
from assist_bot.slack.commands import WORKSPACE_ADMINS_ONLY
from assist_bot.store import ChannelKey, Keys, ThreadKey
from assist_bot.store.keys import InvalidIdError
from tests.fakes.openai import Text
from tests.fakes.slack import event_body, mention, message, new_ts, post_signed, wait_for
from tests.support.bot import SIGNING_SECRET, running_bot, sent_by, wait_pending
from tests.support.flows import response_to
from tests.support.waits import ControlledCallLater, ControlledDeadlines

pytestmark = pytest.mark.timeout(60)

INSTALLED = "T1"  # the workspace the app is installed in (the fake's team)
EXTERNAL = "T014GJXU940"  # a Slack Connect partner's workspace
OTHER_EXTERNAL = "T03E94MJU"


def connect_body(event: dict, *, speaker_team: str) -> dict:
    """An event from a Slack Connect channel, shaped like recorded ones (bolt-python's
    tests/scenario_tests: `team_id` and `event.team` name the speaker's workspace,
    `authorizations[0].team_id` the installation the event was delivered to)."""
    body = event_body({**event, "team": speaker_team}, team_id=INSTALLED)
    body.update(team_id=speaker_team, context_team_id=speaker_team, is_ext_shared_channel=True)
    body["event"].update(user_team=speaker_team, source_team=speaker_team)
    return body


async def post_event(bot, body: dict) -> int:
    status, _ = await post_signed(bot.events_url, body, signing_secret=SIGNING_SECRET)
    return status


def responses_to(slack, url: str) -> list[dict]:
    return [r for r in slack.responses if url.endswith(r["key"])]


# -- one team id: the installation's (issue 9, item 2) ---------------------------------------
TWO = Assistants(
    {
        "general": Assistant(name="general", model="gpt-5.4-mini"),
        "coder": Assistant(name="coder", model="gpt-5.4"),
    },
    "general",
)


async def test_a_slack_connect_thread_is_one_conversation_under_the_channels_settings(slack, openai_fake):
    gate = asyncio.Event()
    openai_fake.enqueue(Text(["first answer"], gate=gate))
    async with running_bot(slack, openai_fake, assistants=TWO, ASSIST_BOT_ADMINS="UADMIN") as bot:
        # The channel's settings are set by the installing workspace's admin...
        await bot.command(slack, "/assist", "use coder", user="UADMIN", channel="C1", team=INSTALLED)
        await wait_for(lambda: slack.responses)
        # ...and an external person's mention, a second external person's follow-up (no mention)
        # and a local person's follow-up all belong to one thread.
        root = mention("C1", "UEXT1", "question from a partner")
        assert await post_event(bot, connect_body(root, speaker_team=EXTERNAL)) == 200
        await wait_for(lambda: openai_fake.busy_conversations)
        follow = message("C1", "WEXT2", "and from another partner", thread_ts=root["ts"])
        assert await post_event(bot, connect_body(follow, speaker_team=OTHER_EXTERNAL)) == 200
        await bot.send(message("C1", "U1", "and from us", thread_ts=root["ts"]))
        # Both follow-ups wait in the one thread's queue while the first answer streams (one lock).
        await wait_pending(bot.bot.store, ThreadKey(INSTALLED, "C1", root["ts"]), 2)
        gate.set()
        await wait_for(lambda: len(openai_fake.response_requests) == 2)
        await wait_for(lambda: len(slack.thread_replies("C1", root["ts"])) == 2)
    first, second = openai_fake.response_requests
    assert first["conversation"] == second["conversation"] and len(openai_fake.conversations) == 1
    assert first["model"] == second["model"] == "gpt-5.4"  # the channel's assistant applies to everyone


async def test_intake_off_set_locally_holds_for_an_external_sharer(slack, openai_fake):
    slack.users["UADMIN"] = {"is_admin": True}
    async with running_bot(slack, openai_fake) as bot:
        url = await bot.command(slack, "/assist", "intake off", user="UADMIN", channel="C1", team=INSTALLED)
        assert "*off*" in (await response_to(slack, url))["text"]
        file = slack.add_file(name="plan.md", content=b"# plan", mimetype="text/markdown", filetype="markdown")
        shared = message("C1", "UEXT1", "fyi", subtype="file_share")
        shared.update(files=[file], upload=True, display_as_bot=False)
        assert await post_event(bot, connect_body(shared, speaker_team=EXTERNAL)) == 200
        # Settle: a file that were taken in would have been downloaded and noted by now.
        await bot.send(mention("C2", "U1", "ping"))
        await wait_for(lambda: slack.bot_messages("C2") and bot.bot.dispatcher.in_flight == 0)
    assert slack.download_tokens == [] and slack.bot_messages("C1") == []


# -- interactivity that cannot crash (issue 9, item 5) -----------------------------------------
FORM = {
    "type": "modal",
    "id": "V1",
    "callback_id": "assist_tool_form",
    "private_metadata": json.dumps({"tool": "get_weather", "channel": "C7"}),
}


@pytest.mark.parametrize(
    "view",
    [
        {**FORM, "state": {}},
        FORM,
        {**FORM, "state": {"values": []}},
        {**FORM, "state": {"values": {"city": "Paris", "unit": {"value": "celsius"}}}},
        {**FORM, "state": {"values": {"unit": {"value": {"selected_option": {"text": "x"}}}}}},
        {**FORM, "state": {"values": {"unit": {"value": {"selected_option": {"value": "not json"}}}}}},
    ],
    ids=["empty-state", "no-state", "values-a-list", "values-not-blocks", "option-without-value", "option-bad-json"],
)
async def test_an_empty_or_unexpected_form_state_is_a_validation_error_in_the_form(slack, openai_fake, view):
    payload = {"type": "view_submission", **sent_by("U1", INSTALLED), "view": view}
    async with running_bot(slack, openai_fake) as bot:
        status, body = await bot.post_payload(payload)
    assert status == 200
    answer = json.loads(body)
    assert answer["response_action"] == "errors" and set(answer["errors"]) <= {"city", "unit"}
    assert slack.bot_messages() == []


@pytest.mark.parametrize("state", [{}, {"values": {}}, {"values": {"question": "?"}}, None])
async def test_the_ask_form_with_an_empty_state_is_a_form_error(slack, openai_fake, state):
    view = {
        "type": "modal",
        "id": "V2",
        "callback_id": "ask_about_message_form",
        "private_metadata": "{}",
        **({"state": state} if state is not None else {}),
    }
    payload = {"type": "view_submission", **sent_by("U1", INSTALLED), "view": view}
    async with running_bot(slack, openai_fake) as bot:
        status, body = await bot.post_payload(payload)
    assert status == 200 and json.loads(body)["response_action"] == "errors"


async def test_every_socket_mode_envelope_is_acked_even_when_nothing_handles_it(slack, openai_fake):
    shortcut = {  # a global shortcut, shaped like python-slack-sdk's recorded envelope
        "type": "shortcut",
        "token": "verification-token",
        "action_ts": "1610198080.300836",
        "team": {"id": INSTALLED, "domain": "acme"},
        "user": {"id": "U1", "username": "user-U1", "team_id": INSTALLED},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": "do-something",
        "trigger_id": "111.222.xxx",
    }
    async with running_bot(slack, openai_fake, socket_mode=True):
        envelope = await slack.push_socket_payload("interactive", shortcut)
        ack = await slack.wait_ack(envelope, seconds=5)
        unknown = await slack.push_socket_event(event_body({"type": "reaction_added", "event_ts": new_ts()}))
        await slack.wait_ack(unknown, seconds=5)
    assert ack == {"envelope_id": envelope}


async def test_http_mode_acks_what_nothing_handles_too(slack, openai_fake):
    async with running_bot(slack, openai_fake) as bot:
        assert await bot.send({"type": "reaction_added", "event_ts": new_ts()}) == 200
        shortcut = {
            "type": "shortcut",
            "team": {"id": INSTALLED, "domain": "acme"},
            "user": {"id": "U1", "username": "user-U1", "team_id": INSTALLED},
            "callback_id": "do-something",
            "trigger_id": "111.222.xxx",
        }
        status, _ = await bot.post_payload(shortcut)
    assert status == 200


# -- HTTP ingress: signature first, no tracebacks, time-outs, a connection limit (issue 11, item 12) ----
async def post_raw(url: str, body: bytes, headers: dict[str, str]) -> int:
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        async with session.post(url, data=body, headers=headers) as resp:
            return resp.status


async def test_malformed_or_unsigned_bodies_are_refused_before_parsing_without_a_traceback(slack, openai_fake, caplog):
    caplog.set_level(logging.DEBUG)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    async with running_bot(slack, openai_fake) as bot:
        for body in (b"payload=%7Bnot-json", b"\xff\xfe\x00garbage", b"payload=[1,2]", b""):
            assert await post_raw(bot.events_url, body, form) == 400  # no signature headers at all
            bad = {**form, "X-Slack-Request-Timestamp": "1700000000", "X-Slack-Signature": "v0=" + "0" * 64}
            assert await post_raw(bot.events_url, body, bad) == 401
        for raw in ("payload=%7Bnot-json", "payload=%5B1%2C2%5D", "{not json", "[1, 2]"):
            kind = "application/json" if raw[0] in "{[" else "application/x-www-form-urlencoded"
            status, _ = await post_signed(bot.events_url, raw, signing_secret=SIGNING_SECRET, content_type=kind)
            assert status == 400, raw
        huge = "payload=" + "x" * (2 * 1024 * 1024)
        status, _ = await post_signed(
            bot.events_url, huge, signing_secret=SIGNING_SECRET, content_type=form["Content-Type"]
        )
        assert status == 413
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert openai_fake.response_requests == []


async def open_raw(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)


async def closed_by_server(reader: asyncio.StreamReader, seconds: float = 10) -> bytes:
    """Everything the server sends until it closes the connection (fails if it never does)."""
    return await asyncio.wait_for(reader.read(), seconds)


async def test_slow_headers_and_slow_bodies_are_cut_off(slack, openai_fake):
    # The time-outs are the test's to fire, not waited out: the seconds asked for are checked,
    # then the deadline comes at once; the server still does the closing and the 408, over a socket.
    headers, bodies = ControlledCallLater(), ControlledDeadlines()
    async with running_bot(
        slack,
        openai_fake,
        timers={"call_later": headers, "http_deadline": bodies},
        ASSIST_BOT_HTTP_HEADER_TIMEOUT=7,
        ASSIST_BOT_HTTP_BODY_TIMEOUT=9,
    ) as bot:
        port = bot.bot.transport.port
        reader, writer = await open_raw(port)
        writer.write(b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nX-Slack-Sig")  # never finishes its headers
        await wait_for(lambda: headers.asked == [7])
        headers.fire()
        # Closed by the server: at EOF, or reset if it closed before reading the partial headers.
        try:
            assert await closed_by_server(reader) == b""
        except ConnectionResetError:
            pass
        writer.close()
        reader, writer = await open_raw(port)
        writer.write(b'POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Length: 100\r\n\r\n{"a":')
        await wait_for(lambda: 9 in bodies.asked)
        assert bodies.asked[-1] == 9  # the latest deadline, the one expire() ends, is the body's
        bodies.expire()
        answer = await closed_by_server(reader)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408")
        assert headers.asked == [7, 7]  # the second connection finished its headers in time


async def test_connections_beyond_the_limit_are_refused_and_the_bot_recovers(slack, openai_fake):
    async with running_bot(slack, openai_fake, ASSIST_BOT_HTTP_MAX_CONNECTIONS=3) as bot:
        port = bot.bot.transport.port
        held = []
        for _ in range(3):  # three keep-alive connections, each known to the server (it answered on it)
            reader, writer = await open_raw(port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\n")
            assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 200")
            held.append(writer)
        reader, writer = await open_raw(port)  # one more: refused before it says anything
        assert (await closed_by_server(reader)).startswith(b"HTTP/1.1 503")
        writer.close()
        for writer in held:
            writer.close()

        async def healthy() -> bool:
            reader, writer = await open_raw(port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n\r\n")
            answer = await closed_by_server(reader)
            writer.close()
            return answer.startswith(b"HTTP/1.1 200")

        for _ in range(100):
            if await healthy():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the bot never took connections again")


# -- ids that are not ids (issue 11, item 15) ----------------------------------------------
def test_the_key_builder_refuses_anything_but_slack_ids():
    keys = Keys()
    assert keys.channel_thread_keys(ChannelKey("T1", "C1")) == "assist-bot:{T1:C1:*}:*"
    for team, channel in (("*", "C1"), ("T1", "*"), ("T1", "C[12]"), ("T?", "C1"), ("", "C1"), ("t1", "C1")):
        with pytest.raises(InvalidIdError):
            keys.channel_thread_keys(ChannelKey(team, channel))
        with pytest.raises(InvalidIdError):
            keys.channel_threads(ChannelKey(team, channel))
        with pytest.raises(InvalidIdError):
            keys.conversation(ThreadKey(team, channel, "1.1"))


async def test_a_signed_reset_with_wildcard_ids_touches_no_team(slack, openai_fake, clean_redis):
    slack.users["UEVIL"] = {"is_admin": True}  # even an admin of some workspace
    async with running_bot(slack, openai_fake, REDIS_URL=clean_redis) as bot:
        threads = []
        for team, channel in (("T1", "C1"), ("T2", "C2")):
            event = mention(channel, "U1", f"hello from {team}", team=team)
            await bot.send(event, team_id=team)
            threads.append(ThreadKey(team, channel, event["ts"]))
        await wait_for(lambda: len(openai_fake.response_requests) == 2 and bot.bot.dispatcher.in_flight == 0)
        for team, channel in (("*", "*"), ("T1", "*"), ("*", "C1"), ("T[12]", "C[12]")):
            form = {
                "team_id": team,
                "channel_id": channel,
                "user_id": "UEVIL",
                "command": "/assist",
                "text": "reset",
                "response_url": slack.response_url(),
                "trigger_id": f"trig-{uuid.uuid4().hex}",
            }
            status = await bot.post_form(form)
            assert status in (200, 400)
        await bot.settled()
        assert slack.responses == []  # nothing was answered to ids that are not ids
        kept = [await conversation_kept(clean_redis, thread) for thread in threads]
        # The same person's reset with real ids works, and only in its own channel.
        url = await bot.command(slack, "/assist", "reset", user="UEVIL", channel="C1", team="T1")
        await response_to(slack, url)
        after = [await conversation_kept(clean_redis, thread) for thread in threads]
    assert kept == [True, True]
    assert after == [False, True]


async def conversation_kept(redis_url: str, thread: ThreadKey) -> bool:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        return await client.exists(Keys().conversation(thread)) == 1
    finally:
        await client.aclose()


# -- the ack waits on nothing but the store (issue 11, item 8) ------------------------------
async def test_acks_do_not_wait_for_users_info_and_one_person_costs_one_lookup(slack, openai_fake):
    slack.users["U1"] = {"display_name": "Ana"}
    held = slack.hold_next("users.info")
    async with running_bot(slack, openai_fake) as bot:
        events = [mention(f"C{n}", "U1", f"question {n}") for n in range(10)]
        # Ten simultaneous mentions by one person are all acked while users.info has not answered.
        statuses = await asyncio.wait_for(asyncio.gather(*(bot.send(e) for e in events)), 10)
        assert statuses == [200] * 10
        await wait_for(lambda: slack.calls_to("users.info"))
        held.set()
        await wait_for(lambda: len(openai_fake.response_requests) == 10)
        await bot.settled()
    assert len(slack.calls_to("users.info")) == 1
    assert all("[Ana (U1)]" in json.dumps(r["input"]) for r in openai_fake.response_requests)


async def test_the_first_ack_of_a_process_makes_no_slack_call_either(slack, openai_fake):
    async with running_bot(slack, openai_fake) as bot:
        # Start-up asked auth.test already; Bolt would ask again at the first event, before the ack.
        held = slack.hold_next("auth.test")
        try:
            event = mention("C1", "U1", "first of the day")
            assert await asyncio.wait_for(bot.send(event), 10) == 200
            await wait_for(lambda: slack.thread_replies("C1", event["ts"]))
        finally:
            held.set()
    assert len(slack.calls_to("auth.test")) == 1


# -- safer defaults for /assist (issue 11, item 16) ---------------------------------------
@pytest.mark.parametrize("text", ["reset", "forget plan.md", "intake off", "use default"])
async def test_with_no_admins_set_only_workspace_admins_change_a_channel(slack, openai_fake, text):
    slack.users["UOWNER"] = {"is_owner": True}
    async with running_bot(slack, openai_fake) as bot:
        url = await bot.command(slack, "/assist", text, user="U1")
        refused = await response_to(slack, url)
        url = await bot.command(slack, "/assist", text, user="UOWNER")
        allowed = await response_to(slack, url)
    assert refused["text"] == WORKSPACE_ADMINS_ONLY
    assert allowed["text"] != WORKSPACE_ADMINS_ONLY
    assert [c.args.get("user") for c in slack.calls_to("users.info")] == ["U1", "UOWNER"]


async def test_a_replayed_slash_command_runs_once(slack, openai_fake):
    async with running_bot(slack, openai_fake) as bot:
        form = {
            "token": "legacy",
            "team_id": INSTALLED,
            "team_domain": "acme",
            "channel_id": "C1",
            "channel_name": "general",
            "user_id": "U1",
            "user_name": "ana",
            "command": "/assist",
            "text": "status",
            "api_app_id": "A1",
            "response_url": slack.response_url(),
            "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        }
        for _ in range(3):  # the very same signed request, sent again within the five minutes
            status = await bot.post_form(form)
            assert status == 200
        await response_to(slack, form["response_url"])
        await bot.settled()
        # A new invocation (a new trigger_id) runs.
        again = await bot.command(slack, "/assist", "status")
        await response_to(slack, again)
    assert len(responses_to(slack, form["response_url"])) == 1
