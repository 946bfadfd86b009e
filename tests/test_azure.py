"""Azure OpenAI: the deployment name as the model, the resource's endpoint with an
api-version (the `api-key` header), or its v1 base URL (the plain client) — against a
fake with Azure's URL shape and headers."""

from __future__ import annotations

import pytest

from assist_bot.assistants import Assistant, Assistants, Backend
from tests.fakes.azure import FakeAzureOpenAI
from tests.fakes.openai import FakeOpenAI
from tests.fakes.slack import mention, message
from tests.support.bot import running_bot
from tests.support.flows import message_containing

pytestmark = pytest.mark.timeout(60)

DEPLOYMENT = "contoso-gpt-4-1-mini"


@pytest.fixture
async def azure():
    # Azure keeps responses (previous_response_id) but has no Conversations API here.
    async with FakeOpenAI("sk-behind-azure", conversations=False) as inner, FakeAzureOpenAI(inner) as fake:
        yield fake


async def conversation(bot, slack):
    first = mention("C1", "U1", "hello Azure")
    await bot.send(first)
    await message_containing(slack, "C1", "hello Azure")
    await bot.send(message("C1", "U1", "and a follow-up", thread_ts=first["ts"]))
    await message_containing(slack, "C1", "and a follow-up")


async def test_an_assistant_on_an_azure_resource_with_an_api_version(slack, azure, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", azure.api_key)
    on_azure = Backend(
        azure_endpoint=azure.endpoint,
        api_version="2025-04-01-preview",
        api_key_env="AZURE_OPENAI_API_KEY",
        state="response_chain",
    )
    assistants = Assistants({"az": Assistant(name="az", model=DEPLOYMENT, backend=on_azure)}, "az")
    async with running_bot(slack, azure.inner, assistants=assistants, OPENAI_API_KEY="sk-never-sent") as bot:
        await conversation(bot, slack)
    responses = [c for c in azure.calls if c.path == "/openai/responses"]
    assert len(responses) == 2
    assert all(c.api_version == "2025-04-01-preview" and c.api_key_header for c in responses)
    assert {c.model for c in responses} == {DEPLOYMENT}
    assert "[user-U1 (U1)] hello Azure" in azure.inner.seen_texts(1)  # the chain carried the first turn
    assert azure.inner.response_requests[1]["previous_response_id"]


async def test_the_bot_on_an_azure_v1_base_url(slack, azure):
    v1 = f"{azure.endpoint}openai/v1"
    async with running_bot(
        slack, azure.inner, OPENAI_BASE_URL=v1, OPENAI_API_KEY=azure.api_key, ASSIST_BOT_MODEL=DEPLOYMENT
    ) as bot:
        assert bot.bot.backends.for_assistant(bot.bot.assistants.default).state == "local"  # auto: no conversations
        await conversation(bot, slack)
    responses = [c for c in azure.calls if c.path == "/openai/v1/responses"]
    assert len(responses) == 2 and {c.model for c in responses} == {DEPLOYMENT}
    assert "[user-U1 (U1)] hello Azure" in azure.inner.seen_texts(1)  # the bot's own history carried it
    assert azure.inner.response_requests[1]["store"] is False
