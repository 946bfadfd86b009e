"""Slash commands over signed HTTP: /assist and one command per tool, in each
argument form (JSON, key=value, free text, the modal)."""

from __future__ import annotations

import json

import pytest

from assist_bot import texts
from assist_bot.assistants import Assistant, Assistants
from tests.fakes.openai import Text
from tests.fakes.slack import mention, wait_for
from tests.support.bot import running_bot
from tests.support.flows import message_containing, opened_modal, response_to
from tests.support.waits import ControlledDeadlines

pytestmark = pytest.mark.timeout(60)

TWO = Assistants(
    {
        "general": Assistant(name="general", model="gpt-5.4-mini", tools=("get_weather",), description="Everyday"),
        "coder": Assistant(name="coder", model="gpt-5.4", description="Code"),
    },
    "general",
)


@pytest.fixture
def smtp_env(monkeypatch):
    """send_email's own settings (no mail is sent in these tests: nobody approves)."""
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_FROM", "bot@example.com")


async def test_assist_help_and_unknown_subcommands(slack, openai_fake):
    async with running_bot(slack, openai_fake) as bot:
        for text in ("", "help", "frobnicate now"):
            response = await response_to(slack, await bot.command(slack, "/assist", text))
            assert response["text"] == texts.ASSIST_HELP
            assert response["response_type"] == "ephemeral"
            assert response["authorization"] is None  # a response_url never gets the token


async def test_use_switches_the_channels_assistant_and_admins_guard_it(slack, openai_fake):
    async with running_bot(slack, openai_fake, assistants=TWO, ASSIST_BOT_ADMINS="UADMIN") as bot:
        listing = await response_to(slack, await bot.command(slack, "/assist", "assistants"))
        assert "*general* (in use here)" in listing["text"] and "*coder*" in listing["text"]
        refused = await response_to(slack, await bot.command(slack, "/assist", "use coder", user="U1"))
        assert refused["text"] == texts.ADMINS_ONLY
        unknown = await response_to(slack, await bot.command(slack, "/assist", "use nobody", user="UADMIN"))
        assert "no assistant called *nobody*" in unknown["text"]
        done = await response_to(slack, await bot.command(slack, "/assist", "use coder", user="UADMIN"))
        assert "*coder*" in done["text"]
        status = await response_to(slack, await bot.command(slack, "/assist", "status"))
        assert "coder (gpt-5.4)" in status["text"]
        event = mention("C1", "U1", "which model?")
        await bot.send(event)
        await wait_for(lambda: openai_fake.response_requests)
        other = mention("C2", "U1", "and here?")
        await bot.send(other)
        await wait_for(lambda: len(openai_fake.response_requests) == 2)
    assert [r["model"] for r in openai_fake.response_requests] == ["gpt-5.4", "gpt-5.4-mini"]


async def test_reset_starts_fresh_conversations_in_the_channel(slack, openai_fake):
    slack.users["U1"] = {"is_admin": True}  # with no ASSIST_BOT_ADMINS, changes are for workspace admins
    async with running_bot(slack, openai_fake) as bot:
        event = mention("C1", "U1", "remember this")
        await bot.send(event)
        await message_containing(slack, "C1", "remember this")
        await bot.settled()  # the turn has ended and saved its conversation
        done = await response_to(slack, await bot.command(slack, "/assist", "reset"))
        assert "forgot 1 conversation" in done["text"]
        from tests.fakes.slack import message

        await bot.send(message("C1", "U1", "still there?", thread_ts=event["ts"]))
        await bot.send(mention("C1", "U1", "again", thread_ts=event["ts"]))
        await wait_for(lambda: len(openai_fake.response_requests) == 2)
    # The follow-up without a mention was ignored (the bot forgot the thread); the mention started afresh.
    first, second = openai_fake.response_requests
    assert first["conversation"] != second["conversation"]


async def test_tools_lists_what_the_user_may_use_including_company_tools(slack, openai_fake, smtp_env):
    async with running_bot(slack, openai_fake, ASSIST_BOT_TOOL_MODULES="tests.support.acme_tools") as bot:
        listing = (await response_to(slack, await bot.command(slack, "/assist", "tools")))["text"]
        vip = (await response_to(slack, await bot.command(slack, "/assist", "tools", user="UVIP")))["text"]
    assert "`/weather` *get_weather*" in listing and "`/email` *send_email* (asks first)" in listing
    assert "*partner*" in listing and "vip_only" not in listing
    assert "`/vip` *vip_only*" in vip


@pytest.mark.parametrize("text", ['{"city": "Paris", "unit": "celsius"}', "city=Paris unit=celsius"])
async def test_weather_command_with_json_or_pairs(slack, openai_fake, meteo_env, text):
    async with running_bot(slack, openai_fake) as bot:
        await bot.command(slack, "/weather", text, channel="C5")
        posted = await wait_for(lambda: slack.bot_messages("C5"))
    assert posted[0].text.startswith("<@U1> used `/weather`:")
    assert "• *temperature*: 20.2" in posted[0].text
    assert openai_fake.response_requests == []  # no model needed


async def test_weather_command_in_plain_words_uses_a_forced_tool_choice(slack, openai_fake, meteo_env):
    openai_fake.enqueue(Text([], calls=[("get_weather", {"city": "Paris", "unit": "fahrenheit"})]))
    async with running_bot(slack, openai_fake) as bot:
        await bot.command(slack, "/weather", "how warm is it in Paris, in fahrenheit", channel="C5")
        posted = await wait_for(lambda: slack.bot_messages("C5"))
    [request] = openai_fake.response_requests
    assert request["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert request["input"] == "how warm is it in Paris, in fahrenheit"
    assert "68.4" in posted[0].text


async def test_bad_arguments_are_explained_to_the_user_alone(slack, openai_fake):
    async with running_bot(slack, openai_fake) as bot:
        response = await response_to(slack, await bot.command(slack, "/weather", "city=Paris unit=kelvin"))
    assert response["response_type"] == "ephemeral"
    assert "unit" in response["text"] and "celsius" in response["text"]
    assert slack.bot_messages() == []


async def test_no_text_opens_a_form_generated_from_the_schema(slack, openai_fake, meteo_env):
    async with running_bot(slack, openai_fake) as bot:
        await bot.command(slack, "/weather", "", channel="C7")
        view = await opened_modal(slack)
        blocks = {b["block_id"]: b for b in view["blocks"]}
        assert set(blocks) == {"city", "unit"}
        assert blocks["unit"]["element"]["type"] == "static_select"
        status, body = await bot.submit_view(
            view,
            {
                "city": {"type": "plain_text_input", "value": ""},
                "unit": {"type": "static_select", "selected_option": None},
            },
        )
        assert status == 200 and json.loads(body)["response_action"] == "errors"
        celsius = next(o for o in blocks["unit"]["element"]["options"] if "celsius" in o["value"])
        status, _ = await bot.submit_view(
            view,
            {
                "city": {"type": "plain_text_input", "value": "Paris"},
                "unit": {"type": "static_select", "selected_option": celsius},
            },
        )
        assert status == 200
        posted = await wait_for(lambda: slack.bot_messages("C7"))
    assert "20.2" in posted[0].text


async def test_email_command_still_asks_for_approval(slack, openai_fake, smtp_env):
    # The approval still waits when the bot stops: its grace is over at once.
    timers = {"deadline": ControlledDeadlines(at_once=7)}
    async with running_bot(slack, openai_fake, timers=timers, ASSIST_BOT_SHUTDOWN_GRACE=7) as bot:
        await bot.command(slack, "/email", 'to=ana@example.com subject=Hi body="See you at 5"', channel="C8")
        ask = await wait_for(lambda: next((m for m in slack.bot_messages("C8") if m.blocks), None))
    assert "send_email" in ask.text and "See you at 5" in json.dumps(ask.blocks)


async def test_without_smtp_there_is_no_email_tool_or_command(slack, openai_fake):
    async with running_bot(slack, openai_fake) as bot:
        listing = (await response_to(slack, await bot.command(slack, "/assist", "tools")))["text"]
    assert "`/weather` *get_weather*" in listing and "send_email" not in listing


async def test_email_arguments_are_checked_before_anyone_is_asked(slack, openai_fake, smtp_env):
    subject = "=?utf-8?b?SGkNClJlcGx5LVRvOiBldmVAZXZpbC5leGFtcGxl?="  # "Hi\r\nReply-To: eve@evil.example"
    async with running_bot(slack, openai_fake) as bot:
        url = await bot.command(slack, "/email", f"to=ana@example.com subject={subject} body=x", channel="C8")
        response = await response_to(slack, url)
    assert response["response_type"] == "ephemeral" and "subject" in response["text"]
    assert slack.bot_messages("C8") == []  # no consent prompt was posted


async def test_weather_with_only_the_city_uses_the_default_unit(slack, openai_fake, meteo_env):
    async with running_bot(slack, openai_fake) as bot:
        await bot.command(slack, "/weather", "city=Paris", channel="C5")
        await bot.command(slack, "/weather", '{"city": "Paris"}', channel="C6")
        await wait_for(lambda: slack.bot_messages("C5") and slack.bot_messages("C6"))
    assert [f["temperature_unit"] for f in meteo_env.forecast] == ["celsius", "celsius"]
    assert "• *unit*: celsius" in slack.bot_messages("C5")[0].text


async def test_the_form_marks_parameters_with_defaults_optional_and_fills_them_in(slack, openai_fake, meteo_env):
    async with running_bot(slack, openai_fake) as bot:
        await bot.command(slack, "/weather", "", channel="C7")
        view = await opened_modal(slack)
        blocks = {b["block_id"]: b for b in view["blocks"]}
        assert (blocks["city"]["optional"], blocks["unit"]["optional"]) == (False, True)
        assert blocks["unit"]["element"]["initial_option"]["value"] == '"celsius"'
        status, _ = await bot.submit_view(
            view,
            {
                "city": {"type": "plain_text_input", "value": "Paris"},
                "unit": {"type": "static_select", "selected_option": None},  # cleared: the default applies
            },
        )
        assert status == 200
        await wait_for(lambda: slack.bot_messages("C7"))
    assert meteo_env.forecast[0]["temperature_unit"] == "celsius"


async def test_a_form_submission_checks_who_submits_it(slack, openai_fake):
    async with running_bot(slack, openai_fake, ASSIST_BOT_TOOL_MODULES="tests.support.acme_tools") as bot:
        await bot.command(slack, "/vip", "", user="UVIP", channel="C9")
        view = await opened_modal(slack)
        # Someone else submits the same view (its private_metadata names the tool and channel).
        status, _ = await bot.submit_view(view, {}, user="U1")
        assert status == 200
        [note] = await wait_for(lambda: slack.calls_to("chat.postEphemeral"))
        status, _ = await bot.submit_view(view, {}, user="UVIP")
        posted = await wait_for(lambda: slack.bot_messages("C9"))
    assert note.args["user"] == "U1" and note.args["text"] == texts.tool_not_allowed("vip_only")
    assert [m.text for m in posted] == ["<@UVIP> used `/vip`:\nvip"]


async def test_a_submission_without_state_is_a_form_error_not_a_crash(slack, openai_fake, meteo_env):
    async with running_bot(slack, openai_fake) as bot:
        await bot.command(slack, "/weather", "", channel="C7")
        view = await opened_modal(slack)
        payload = {
            "type": "view_submission",
            "team": {"id": "T1", "domain": "acme"},
            "user": {"id": "U1", "username": "user-U1", "team_id": "T1"},
            "api_app_id": "A1",
            "token": "legacy",
            "trigger_id": "trig-1",
            "view": {**view, "id": "V1", "state": {}},  # as Slack sends for a view with no inputs touched
        }
        status, body = await bot.post_payload(payload)
    assert status == 200
    assert json.loads(body) == {"response_action": "errors", "errors": {"city": "city: field required"}}


async def test_what_a_tool_returns_can_neither_ping_nor_disguise_a_link(slack, openai_fake):
    text = "<!channel> see <https://evil.example|https://corp.example> & <@U2>"
    async with running_bot(slack, openai_fake, ASSIST_BOT_TOOL_MODULES="tests.support.acme_tools") as bot:
        await bot.command(slack, "/echo", json.dumps({"text": text}), channel="C3")
        [posted] = await wait_for(lambda: slack.bot_messages("C3"))
    assert posted.text == (
        "<@U1> used `/echo`:\n• *said*: &lt;!channel&gt; see "
        "&lt;https://evil.example|https://corp.example&gt; &amp; &lt;@U2&gt;"
    )
