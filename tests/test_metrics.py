"""/metrics: Prometheus text that prometheus_client's own parser reads, whose counters
move when a real turn goes through the fakes (HTTP mode on the app's port; Socket Mode
on ASSIST_BOT_METRICS_PORT, with /healthz there too)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.openai import FakeOpenAI, HttpError, Text
from tests.fakes.slack import event_body, mention
from tests.support.bot import running_bot
from tests.support.flows import approval_id, consent_prompt, message_containing
from tests.support.second_server import assistants_file
from tests.support.waits import RecordedWaits

pytestmark = pytest.mark.timeout(60)


async def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """Every sample, keyed by (name, sorted labels)."""
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=")
        text = await resp.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def wait_metric(url: str, name: str, at_least: float, **labels: str) -> dict:
    latest: dict = {}

    async def poll() -> bool:
        latest.update(await scrape(url))
        return value(latest, name, **labels) >= at_least

    for _ in range(250):
        if await poll():
            return latest
        await asyncio.sleep(0.04)
    raise AssertionError(f"{name}{labels} never reached {at_least}: {value(latest, name, **labels)}")


async def wait_slack_counted(url: str, slack) -> dict:
    latest: dict = {}
    for _ in range(250):
        latest = await scrape(url)
        if all(
            value(latest, "assist_bot_slack_requests_total", method=m, status="200") == len(slack.calls_to(m))
            for m in {call.method for call in slack.calls}
        ):
            return latest
        await asyncio.sleep(0.04)
    return latest  # the assertions below say which method is off


async def test_counters_move_after_a_turn_in_http_mode(slack, openai_fake):
    openai_fake.enqueue(Text(["Hello ", "there, ", "friend"]))
    slack.fail_next("users.info", error="user_not_found")  # a Slack error the reply survives
    async with running_bot(slack, openai_fake) as bot:
        url = f"http://127.0.0.1:{bot.bot.transport.port}/metrics"
        before = await scrape(url)
        assert value(before, "assist_bot_turns_total", outcome="done") == 0
        event = mention("C1", "U1", "say hello")
        assert await bot.send(event) == 200
        await message_containing(slack, "C1", "friend")
        await wait_metric(url, "assist_bot_turns_total", 1, outcome="done")
        await bot.settled()
        # The reply's last calls (the stream's stop, the status) may land just after the turn is
        # counted: scrape until the counters have caught up with what the fake Slack answered.
        after = await wait_slack_counted(url, slack)
    assert value(after, "assist_bot_time_to_first_token_seconds_count") == 1
    assert value(after, "assist_bot_time_to_final_text_seconds_count") == 1
    assert value(after, "assist_bot_active_streams") == 0 and value(after, "assist_bot_queue_depth") == 0
    assert value(after, "assist_bot_approvals_waiting") == 0
    # Every Web API call the fake Slack answered is counted under its method (all answered 200 here).
    methods = {call.method for call in slack.calls}
    assert {"auth.test", "users.info"} <= methods and len(methods) >= 3
    for method in methods:
        counted = value(after, "assist_bot_slack_requests_total", method=method, status="200")
        assert counted == len(slack.calls_to(method)), method
    assert value(after, "assist_bot_slack_errors_total", method="users.info", error="user_not_found") == 1
    assert value(after, "assist_bot_openai_requests_total", method="POST", endpoint="/v1/responses", status="200") == 1
    assert value(after, "assist_bot_openai_requests_total", method="POST", endpoint="/v1/conversations", status="200")
    # Tokens as the fake's response.completed reported them.
    usage = next(iter(openai_fake.responses.values()))["usage"]
    model = "gpt-5.4-mini"
    assert value(after, "assist_bot_tokens_total", model=model, kind="input") == usage["input_tokens"]
    assert value(after, "assist_bot_tokens_total", model=model, kind="output") == usage["output_tokens"] > 0


async def test_calls_to_a_model_server_an_assistant_names_are_counted_too(slack, openai_fake, tmp_path, monkeypatch):
    async with FakeOpenAI("sk-second") as second:
        file = assistants_file(tmp_path, second, monkeypatch)  # the default assistant lives there
        async with running_bot(slack, openai_fake, ASSIST_BOT_ASSISTANTS=file) as bot:
            url = f"http://127.0.0.1:{bot.bot.transport.port}/metrics"
            await bot.send(mention("C1", "U1", "hello over there"))
            await message_containing(slack, "C1", "You said")
            done = await wait_metric(url, "assist_bot_turns_total", 1, outcome="done")
    assert len(second.response_requests) == 1 and openai_fake.response_requests == []
    where = {"method": "POST", "endpoint": "/v1/responses", "status": "200"}
    assert value(done, "assist_bot_openai_requests_total", **where) == 1
    usage = next(iter(second.responses.values()))["usage"]
    assert value(done, "assist_bot_tokens_total", model="gpt-5.4-mini", kind="output") == usage["output_tokens"] > 0


async def test_openai_429s_and_failed_turns_are_counted(slack, openai_fake):
    too_many = HttpError(429, "rate_limit_exceeded", "Rate limit reached", headers={"retry-after": "0"})
    openai_fake.enqueue(too_many, too_many)  # the engine asks once more, then gives up
    async with running_bot(slack, openai_fake) as bot:
        bot.bot.engine.sleep = RecordedWaits()
        url = f"http://127.0.0.1:{bot.bot.transport.port}/metrics"
        await bot.send(mention("C1", "U1", "hello?"))
        failed = await wait_metric(url, "assist_bot_turns_total", 1, outcome="openai_rate_limited")
    where = {"method": "POST", "endpoint": "/v1/responses", "status": "429"}
    assert value(failed, "assist_bot_openai_rate_limited_total", endpoint="/v1/responses") == 2
    assert value(failed, "assist_bot_openai_errors_total", **where) == 2
    assert value(failed, "assist_bot_time_to_final_text_seconds_count") == 0
    assert value(failed, "assist_bot_active_streams") == 0


async def test_socket_mode_serves_metrics_and_health_on_the_metrics_port(slack, openai_fake):
    async with running_bot(slack, openai_fake, socket_mode=True, ASSIST_BOT_METRICS_PORT=0) as bot:
        listener = bot.bot.metrics_listener
        assert listener is not None and listener.port
        base = f"http://127.0.0.1:{listener.port}"
        async with aiohttp.ClientSession() as session, session.get(f"{base}/healthz") as resp:
            assert resp.status == 200 and (await resp.json()) == {"ok": True}
        await slack.wait_socket_connected()
        await slack.push_socket_event(event_body(mention("C1", "U1", "over the socket")))
        samples = await wait_metric(f"{base}/metrics", "assist_bot_turns_total", 1, outcome="done")
    assert value(samples, "assist_bot_time_to_first_token_seconds_count") == 1


async def test_two_bots_keep_their_own_registries(slack, openai_fake):
    async with running_bot(slack, openai_fake) as one:
        await one.send(mention("C1", "U1", "hi"))
        await wait_metric(
            f"http://127.0.0.1:{one.bot.transport.port}/metrics", "assist_bot_turns_total", 1, outcome="done"
        )
    async with running_bot(slack, openai_fake) as two:
        fresh = await scrape(f"http://127.0.0.1:{two.bot.transport.port}/metrics")
    assert value(fresh, "assist_bot_turns_total", outcome="done") == 0


async def test_queue_depth_and_active_streams_while_a_turn_waits_for_a_slot(slack, openai_fake):
    gate = asyncio.Event()
    openai_fake.enqueue(Text(["first ", "answer"], gate=gate), Text(["second answer"]))
    async with running_bot(slack, openai_fake, ASSIST_BOT_MAX_CONCURRENT_TURNS=1) as bot:
        url = f"http://127.0.0.1:{bot.bot.transport.port}/metrics"
        await bot.send(mention("C1", "U1", "one"))
        await wait_metric(url, "assist_bot_active_streams", 1)
        await bot.send(mention("C2", "U2", "two"))  # another thread: it waits for the only slot
        busy = await wait_metric(url, "assist_bot_queue_depth", 1)
        assert value(busy, "assist_bot_active_streams") == 1
        gate.set()
        done = await wait_metric(url, "assist_bot_turns_total", 2, outcome="done")
    assert value(done, "assist_bot_queue_depth") == 0 and value(done, "assist_bot_active_streams") == 0


@pytest.mark.usefixtures("mail_inbox")  # send_email is offered only with a mail server
async def test_approvals_waiting_while_a_side_effect_tool_waits_for_a_person(slack, openai_fake):
    email = {"to": "ana@example.com", "subject": "Hi", "body": "Hello."}
    openai_fake.enqueue(Text([], calls=[("send_email", email)]), Text(["Sent."]))
    async with running_bot(slack, openai_fake) as bot:
        url = f"http://127.0.0.1:{bot.bot.transport.port}/metrics"
        event = mention("C1", "U1", "email ana")
        await bot.send(event)
        ask = await consent_prompt(slack, "C1", event["ts"])
        waiting = await wait_metric(url, "assist_bot_approvals_waiting", 1)
        assert value(waiting, "assist_bot_active_streams") == 0  # waiting for a person is not streaming
        await bot.click(slack, "assist_approve", approval_id(ask), user="U2", channel="C1", message_ts=ask.ts)
        done = await wait_metric(url, "assist_bot_turns_total", 1, outcome="done")
    assert value(done, "assist_bot_approvals_waiting") == 0 and value(done, "assist_bot_active_streams") == 0
