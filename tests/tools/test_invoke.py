"""Running tools for the model: every outcome, failure included, is text."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import pytest
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from assist_bot.tools import ToolContext, ToolFailure, ToolResult, ToolSettings, make_tool, tool
from assist_bot.tools.loading import prepare
from tests.support.waits import ControlledDeadlines

pytestmark = pytest.mark.timeout(10)


async def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def where(ctx: ToolContext, shout: bool = False) -> dict:
    """Say where the call comes from (sync, so it runs in a thread)."""
    text = f"{ctx.team}/{ctx.channel}/{ctx.user}/{ctx.thread_ts}"
    return {"where": text.upper() if shout else text}


@dataclass
class Point:
    x: int
    y: int


def point() -> Point:
    """A dataclass result."""
    return Point(1, 2)


async def slow() -> str:
    """Never in time."""
    await asyncio.sleep(5)
    return "late"


def slow_sync() -> str:
    """Blocks its thread, not the loop."""
    time.sleep(0.3)
    return "late"


class CrmSettings(ToolSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_")

    api_key: SecretStr
    region: str = "eu"


@tool(settings=CrmSettings)
async def leaky(ctx: ToolContext[CrmSettings]) -> str:
    """Fails with its own secret in its message."""
    assert ctx.settings is not None
    raise ValueError(f"login failed for {ctx.settings.api_key.get_secret_value()} and sk-live-abcdef123")


@tool(settings=CrmSettings)
def snoop(ctx: ToolContext[CrmSettings]) -> str:
    """Everything its context holds, secrets revealed."""
    assert ctx.settings is not None
    return repr(ctx) + repr(vars(ctx)) + repr(ctx.settings.model_dump()) + ctx.settings.api_key.get_secret_value()


async def expected_failure() -> str:
    """A failure worded for the model."""
    raise ToolFailure("No place called 'Atlantis' was found")


async def own_timeout() -> str:
    """Its own TimeoutError, not the deadline."""
    raise TimeoutError("upstream took too long")


async def test_async_tool(make_ctx):
    assert await make_tool(add).invoke('{"a": 2, "b": 3}', make_ctx()) == ToolResult(True, "5")


async def test_sync_tool_gets_the_context(make_ctx):
    result = await make_tool(where).invoke({"shout": None}, make_ctx(user="U9", channel="C7"))
    assert result.ok
    assert json.loads(result.output) == {"where": "T1/C7/U9/1.0"}


async def test_results_are_json_encoded(make_ctx):
    assert (await make_tool(point).invoke("{}", make_ctx())).output == '{"x": 1, "y": 2}'


async def test_invalid_arguments_become_text(make_ctx):
    result = await make_tool(add).invoke('{"a": "two"}', make_ctx())
    assert result == ToolResult(False, "Error: invalid arguments: a: must be an integer; b: field required")


async def test_exception_becomes_text_without_secrets(make_ctx, make_settings, monkeypatch):
    monkeypatch.setenv("CRM_API_KEY", "crm-very-secret-key")
    ready = prepare(make_tool(leaky, settings=CrmSettings), make_settings())
    assert ready is not None
    result = await ready.invoke("{}", make_ctx())
    assert not result.ok
    assert result.output.startswith("Error: ValueError: login failed for ")
    assert "crm-very-secret-key" not in result.output and "sk-live-abcdef123" not in result.output
    assert "Traceback" not in result.output


async def test_expected_failure_is_just_its_message(make_ctx):
    result = await make_tool(expected_failure).invoke("{}", make_ctx())
    assert result == ToolResult(False, "Error: No place called 'Atlantis' was found")


async def test_a_tool_sees_its_own_settings_and_no_credentials_of_the_bot(make_ctx, make_settings, monkeypatch):
    monkeypatch.setenv("CRM_API_KEY", "crm-key")
    monkeypatch.setenv("CRM_REGION", "us")
    settings = make_settings(SLACK_BOT_TOKEN="xoxb-bot-token-1", OPENAI_API_KEY="sk-openai-key-1")
    ready = prepare(make_tool(snoop, settings=CrmSettings), settings)
    assert ready is not None
    result = await ready.invoke("{}", make_ctx())
    assert result.ok and "crm-key" in result.output and "'region': 'us'" in result.output
    assert "xoxb-bot-token-1" not in result.output and "sk-openai-key-1" not in result.output


async def test_a_tool_without_settings_gets_none(make_ctx):
    def settings_of(ctx: ToolContext) -> str:
        """Its settings."""
        return repr(ctx.settings)

    assert (await make_tool(settings_of).invoke("{}", make_ctx())).output == "None"


async def test_timeout_from_settings(make_ctx, make_settings):
    ready = prepare(make_tool(slow), make_settings(ASSIST_BOT_TOOL_TIMEOUT="7"))
    assert ready is not None
    deadlines = ControlledDeadlines(at_once=7)  # over as soon as it starts: nothing waits it out
    result = await ready.invoke("{}", make_ctx(), deadline=deadlines)
    assert result == ToolResult(False, "Error: slow did not finish within 7 seconds")
    assert deadlines.asked == [7]


async def test_tool_timeout_overrides_settings_and_covers_sync_tools(make_ctx):
    deadlines = ControlledDeadlines(at_once=3)
    result = await make_tool(slow_sync, timeout=3).invoke("{}", make_ctx(), deadline=deadlines)
    assert result == ToolResult(False, "Error: slow_sync did not finish within 3 seconds")
    assert deadlines.asked == [3]


async def test_a_tools_own_timeout_error_is_a_failure(make_ctx):
    result = await make_tool(own_timeout).invoke("{}", make_ctx())
    assert result == ToolResult(False, "Error: TimeoutError: upstream took too long")


def test_as_run_is_what_the_function_gets_in_its_own_order(make_ctx):
    def book(city: str, nights: int = 2, note: str | None = None) -> str:
        """Book a stay."""
        return city

    shown = make_tool(book).as_run({"note": None, "nights": None, "city": "Lisbon"})
    assert list(shown.items()) == [("city", "Lisbon"), ("nights", 2), ("note", None)]
