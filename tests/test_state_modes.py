"""ASSIST_BOT_STATE and model servers other than OpenAI: `auto` asks the server, `local`
keeps the history in the store within its budget, `response_chain` survives a lost
response, and one bot serves a local model in one channel and OpenAI in another."""

from __future__ import annotations

import asyncio
import logging

import pytest

from assist_bot import texts
from assist_bot.assistants import Assistant, Assistants, Backend
from assist_bot.store import ChannelKey, ThreadKey
from tests.fakes.openai import FakeOpenAI, HttpError, Text
from tests.fakes.slack import file_share_message, mention, message, wait_for
from tests.support.assistants_files import write_assistants_file
from tests.support.bot import SIGNING_SECRET, running_bot
from tests.support.console import run_script, script_env
from tests.support.flows import message_containing, reply_containing

pytestmark = pytest.mark.timeout(60)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
async def local_server():
    """A second model server, without conversations (vLLM, Ollama, LM Studio...), with its own key."""
    async with FakeOpenAI("sk-local", conversations=False) as fake:
        yield fake


@pytest.mark.parametrize("state_mode", ["local"])
async def test_local_history_lives_in_redis_within_its_budget(slack, openai_fake, redis_url):
    # About 40 tokens a turn: a budget of 90 holds two turns, so the third drops the first.
    small = Assistants(
        {"small": Assistant(name="small", model="m", backend=Backend(history_tokens=90))},
        "small",
    )
    async with running_bot(slack, openai_fake, assistants=small, REDIS_URL=redis_url) as bot:
        first = mention("C1", "U1", "turn one about apples")
        await bot.send(first)
        await reply_containing(slack, "C1", first["ts"], "apples")
        for n, word in enumerate(("pears", "plums"), start=2):
            await bot.send(message("C1", "U1", f"turn {n} about {word}", thread_ts=first["ts"]))
            await reply_containing(slack, "C1", first["ts"], word)
        await bot.settled()
        kept = (await bot.bot.store.begin_turn(ThreadKey("T1", "C1", first["ts"]))).history
    assert "[user-U1 (U1)] turn 2 about pears" in openai_fake.seen_texts(2)
    assert not any("apples" in text for text in openai_fake.seen_texts(2))
    assert all(request["store"] is False for request in openai_fake.response_requests)
    assert [item.get("role") for item in kept] == ["user", "assistant", "user", "assistant"]
    assert "plums" in kept[-1]["content"]


@pytest.mark.parametrize("state_mode", ["local"])
async def test_with_context_off_a_local_history_drops_nothing_until_the_model_refuses(slack, openai_fake, redis_url):
    # The budget that dropped the first turn above does not apply: "off" never drops silently.
    keep_all = Assistants({"k": Assistant(name="k", model="m", context="off", backend=Backend(history_tokens=80))}, "k")
    async with running_bot(slack, openai_fake, assistants=keep_all, REDIS_URL=redis_url) as bot:
        first = mention("C1", "U1", "turn one about apples")
        await bot.send(first)
        await reply_containing(slack, "C1", first["ts"], "apples")
        for n, word in enumerate(("pears", "plums"), start=2):
            await bot.send(message("C1", "U1", f"turn {n} about {word}", thread_ts=first["ts"]))
            await reply_containing(slack, "C1", first["ts"], word)
        openai_fake.context_window = 20  # words: the thread has outgrown the model
        await bot.send(message("C1", "U1", "turn 4 about figs", thread_ts=first["ts"]))
        await reply_containing(slack, "C1", first["ts"], texts.failure("context_window"))
    assert "[user-U1 (U1)] turn one about apples" in openai_fake.seen_texts(2)
    assert not any("truncation" in r or "context_management" in r for r in openai_fake.response_requests)
    assert openai_fake.truncations == openai_fake.compactions == 0


@pytest.mark.parametrize("state_mode", ["local"])
async def test_a_failed_turn_keeps_what_people_said(slack, openai_fake):
    # Twice: a response that fails before any output is asked once more.
    openai_fake.enqueue(HttpError(500, "server_error", "boom"), HttpError(500, "server_error", "boom"))
    async with running_bot(slack, openai_fake) as bot:
        first = mention("C1", "U1", "the question that failed")
        await bot.send(first)
        await reply_containing(slack, "C1", first["ts"], "⚠️")
        await bot.send(message("C1", "U1", "try again", thread_ts=first["ts"]))
        await reply_containing(slack, "C1", first["ts"], "try again")
    assert len(openai_fake.response_requests) == 3
    assert "[user-U1 (U1)] the question that failed" in openai_fake.seen_texts(2)


@pytest.mark.parametrize("state_mode", ["response_chain"])
async def test_a_lost_response_chain_starts_afresh_instead_of_failing(slack, openai_fake):
    async with running_bot(slack, openai_fake) as bot:
        first = mention("C1", "U1", "remember me")
        await bot.send(first)
        await reply_containing(slack, "C1", first["ts"], "remember me")
        await bot.settled()
        openai_fake.forget_responses()  # expired, or the server restarted
        await bot.send(message("C1", "U1", "still there?", thread_ts=first["ts"]))
        await reply_containing(slack, "C1", first["ts"], "still there?")
        await bot.settled()
        await bot.send(message("C1", "U1", "and now?", thread_ts=first["ts"]))
        await reply_containing(slack, "C1", first["ts"], "and now?")
    lost, retried, chained = openai_fake.response_requests[1:]
    assert lost["previous_response_id"] and "previous_response_id" not in retried
    assert chained["previous_response_id"] not in (None, lost["previous_response_id"])
    assert "[user-U1 (U1)] still there?" in openai_fake.seen_texts(3)  # the new chain holds


async def test_one_bot_serves_a_local_model_in_one_channel_and_openai_in_another(
    slack, openai_fake, local_server, monkeypatch, caplog
):
    monkeypatch.setenv("LOCAL_LLM_KEY", "sk-local")
    on_local = Backend(base_url=local_server.base_url, api_key_env="LOCAL_LLM_KEY")
    assistants = Assistants(
        {
            "cloud": Assistant(name="cloud", model="gpt-5.4-mini", tools=("web_search",)),
            "onprem": Assistant(name="onprem", model="qwen3:8b", tools=("web_search",), backend=on_local),
        },
        "cloud",
    )
    caplog.set_level(logging.INFO, logger="assist_bot.engine.backends")
    async with running_bot(slack, openai_fake, assistants=assistants) as bot:
        await bot.bot.store.set_channel_setting(ChannelKey("T1", "C2"), "assistant", "onprem")
        cloud, onprem = mention("C1", "U1", "hello cloud"), mention("C2", "U1", "hello on-prem")
        await asyncio.gather(bot.send(cloud), bot.send(onprem))
        await reply_containing(slack, "C1", cloud["ts"], "hello cloud")
        await reply_containing(slack, "C2", onprem["ts"], "hello on-prem")
        await bot.send(message("C2", "U1", "and again", thread_ts=onprem["ts"]))
        await reply_containing(slack, "C2", onprem["ts"], "and again")
        file = slack.add_file(
            name="handbook.pdf", content=PDF, mimetype="application/pdf", filetype="pdf", channel="C2"
        )
        await bot.send(file_share_message("C2", "U1", "", [file]))
        await message_containing(slack, "C2", "handbook.pdf")
        shot = slack.add_file(name="shot.png", content=PNG, mimetype="image/png", filetype="png", channel="C2")
        await bot.send(file_share_message("C2", "U1", "<@UBOT> what is this?", [shot]))
        await message_containing(slack, "C2", "shot.png")
    [to_cloud] = openai_fake.response_requests
    assert to_cloud["conversation"] and {"type": "web_search"} in to_cloud["tools"]
    first, second, about_the_picture = local_server.response_requests
    assert "input_image" not in str(about_the_picture["input"])  # the text is answered, the picture left out
    assert first["model"] == "qwen3:8b" and first["store"] is False and "conversation" not in first
    assert "tools" not in first  # no hosted tools where the server has none
    assert "[user-U1 (U1)] hello on-prem" in local_server.seen_texts(1)
    note = next(m.text for m in slack.bot_messages("C2") if "handbook.pdf" in m.text)
    assert "this model server has no file search" in note
    note = next(m.text for m in slack.bot_messages("C2") if "shot.png" in m.text)
    assert "this model server has no file uploads for images" in note
    assert openai_fake.files == {} and local_server.files == {} and openai_fake.vector_stores == {}
    assert "assistant onprem: " + local_server.base_url + ", state local" in caplog.text
    assert "assistant cloud: " + openai_fake.base_url + ", state conversation" in caplog.text
    assert "sk-test" not in caplog.text and "sk-local" not in caplog.text


async def test_check_prints_each_assistants_state(slack, openai_fake, local_server, tmp_path):
    assistants_file = write_assistants_file(
        tmp_path,
        'version = 1\ndefault = "cloud"\n[assistants.cloud]\n[assistants.onprem]\nmodel = "qwen3"\n'
        f'[assistants.onprem.backend]\nbase_url = "{local_server.base_url}"\napi_key_env = "LOCAL_LLM_KEY"\n'
        '[assistants.chained]\n[assistants.chained.backend]\nstate = "response_chain"\n',
    )
    env = script_env(
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_API_URL=slack.api_url,  # check asks Slack too
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=openai_fake.base_url,
        LOCAL_LLM_KEY="sk-local",
        ASSIST_BOT_ASSISTANTS=assistants_file,
        ASSIST_BOT_STATE="auto",
    )
    result = await run_script("check", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    lines = [" ".join(line.split(None, 1)) for line in result.lines]  # "ok      x" -> "ok x"
    assert f"ok assistant onprem: {local_server.base_url}, state local (auto: asked the server), hosted tools off" in (
        lines
    )
    assert (
        f"ok assistant cloud: {openai_fake.base_url}, state conversation (auto: asked the server), hosted tools on"
        in lines
    )
    assert f"ok assistant chained: {openai_fake.base_url}, state response_chain, hosted tools off" in lines
    assert openai_fake.conversations == {}  # the probe leaves nothing behind


@pytest.mark.parametrize("state_mode", ["conversation"])
async def test_a_conversation_made_by_a_failed_turn_is_kept(slack, openai_fake):
    """The engine reports the new conversation as an event at once, so the dispatcher saves it
    even when the turn then fails: the next turn continues it rather than making another."""
    # Twice: a response that fails before any output is asked once more.
    openai_fake.enqueue(HttpError(500, "server_error", "boom"), HttpError(500, "server_error", "boom"))
    async with running_bot(slack, openai_fake) as bot:
        first = mention("C1", "U1", "the first try")
        await bot.send(first)
        await reply_containing(slack, "C1", first["ts"], "⚠️")
        await bot.send(message("C1", "U1", "again", thread_ts=first["ts"]))
        await reply_containing(slack, "C1", first["ts"], "again")
    failed, retried, answered_ = openai_fake.response_requests
    assert failed["conversation"] == retried["conversation"] == answered_["conversation"]
    assert list(openai_fake.conversations) == [failed["conversation"]]


async def test_auto_with_an_unreachable_server_says_so_in_one_line(tmp_path):
    from tests.support.redis_server import free_port

    env = script_env(
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        OPENAI_API_KEY="sk-secret-value",
        OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
        SLACK_API_URL=f"http://127.0.0.1:{free_port()}/api/",
        ASSIST_BOT_OPENAI_MAX_RETRIES=0,
    )
    result = await run_script("check", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "failed  openai: OpenAI is unreachable — fix: check OPENAI_BASE_URL" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr and "sk-secret-value" not in result.stdout + result.stderr


async def test_a_slash_command_in_an_onprem_channel_asks_that_channels_model(
    slack, openai_fake, local_server, monkeypatch, meteo_env
):
    """`/weather <free text>`: the arguments are filled in by the channel's own model."""
    monkeypatch.setenv("LOCAL_LLM_KEY", "sk-local")
    on_local = Backend(base_url=local_server.base_url, api_key_env="LOCAL_LLM_KEY")
    assistants = Assistants(
        {
            "cloud": Assistant(name="cloud", model="gpt-5.4-mini", tools=("get_weather",)),
            "onprem": Assistant(name="onprem", model="qwen3:8b", tools=("get_weather",), backend=on_local),
        },
        "cloud",
    )
    local_server.enqueue(Text([], calls=[("get_weather", {"city": "Paris", "unit": "celsius"})]))
    async with running_bot(slack, openai_fake, assistants=assistants) as bot:
        await bot.bot.store.set_channel_setting(ChannelKey("T1", "C2"), "assistant", "onprem")
        await bot.command(slack, "/weather", "how warm is it in Paris", channel="C2")
        await wait_for(lambda: slack.bot_messages("C2"))
    [request] = local_server.response_requests
    assert request["model"] == "qwen3:8b" and request["input"] == "how warm is it in Paris"
    assert openai_fake.response_requests == []


@pytest.mark.parametrize("state_mode", ["local"])
async def test_a_server_that_compacts_keeps_the_whole_thread_in_a_short_history(slack, openai_fake, redis_url):
    # The same budget that dropped the first turn above: with compaction the server folds the
    # thread into one item instead, and the model still sees the first turn at the end.
    compacting = Assistants(
        {"c": Assistant(name="c", model="m", context="compact", backend=Backend(history_tokens=80))}, "c"
    )
    async with running_bot(slack, openai_fake, assistants=compacting, REDIS_URL=redis_url) as bot:
        first = mention("C1", "U1", "turn one about apples")
        await bot.send(first)
        await reply_containing(slack, "C1", first["ts"], "apples")
        for n, word in enumerate(("pears", "plums", "figs"), start=2):
            await bot.send(message("C1", "U1", f"turn {n} about {word}", thread_ts=first["ts"]))
            await reply_containing(slack, "C1", first["ts"], word)
        await bot.settled()
        kept = (await bot.bot.store.begin_turn(ThreadKey("T1", "C1", first["ts"]))).history
    requests = openai_fake.response_requests
    assert all(r["context_management"] == [{"type": "compaction", "compact_threshold": 80}] for r in requests)
    assert kept[0]["type"] == "compaction" and len(kept) <= 3  # the history restarts from the compaction
    assert requests[-1]["input"][0]["type"] == "compaction" and len(requests[-1]["input"]) <= 3
    assert "[user-U1 (U1)] turn one about apples" in openai_fake.seen_texts(len(requests) - 1)
