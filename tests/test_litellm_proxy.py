"""A real non-OpenAI Responses server: the LiteLLM proxy (pinned, installed by
scripts/litellm-env into a cached virtualenv of its own), routing a model to a loopback
Chat Completions fake. In `auto` mode the bot finds no conversations there, keeps the
thread itself, and the model behind the proxy sees the first turn in the second."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest

from assist_bot.assistants import Assistant, Assistants
from tests.fakes.chat_completions import FakeChatCompletions
from tests.fakes.slack import mention, message, wait_for
from tests.support.bot import running_bot
from tests.support.processes import child_env, wait_healthy
from tests.support.redis_server import free_port

pytestmark = pytest.mark.timeout(180)

LITELLM_VERSION = "1.106.4"  # keep in step with scripts/litellm-env
MASTER_KEY = "sk-proxy-master"


def litellm_executable() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "assist-bot" / f"litellm-{LITELLM_VERSION}" / "bin" / "litellm"


CONFIG = """
model_list:
  - model_name: local-model
    litellm_params:
      model: openai/upstream-model
      api_base: {api_base}
      api_key: sk-upstream
      use_chat_completions_api: true
litellm_settings:
  callbacks: []
  success_callback: []
  failure_callback: []
  telemetry: false
general_settings:
  master_key: {master_key}
"""


@pytest.fixture
async def litellm_proxy(tmp_path):
    executable = litellm_executable()
    if not (executable.parent.parent / ".complete").exists():
        pytest.skip(f"litellm[proxy]=={LITELLM_VERSION} could not be installed (scripts/litellm-env; see its output)")
    async with FakeChatCompletions() as upstream:
        config = tmp_path / "litellm.yaml"
        config.write_text(CONFIG.format(api_base=upstream.base_url, master_key=MASTER_KEY))
        port = free_port()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # offline: no cost map download
            "LITELLM_TELEMETRY": "False",
        }
        proc = await asyncio.create_subprocess_exec(
            str(executable),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            env=child_env(env),
            cwd=tmp_path,
            stdout=(tmp_path / "litellm.log").open("wb"),
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            await wait_healthy(
                f"http://127.0.0.1:{port}/health/liveliness", proc, seconds=120, what="the LiteLLM proxy", every=0.25
            )
            yield SimpleNamespace(
                base_url=f"http://127.0.0.1:{port}/v1", upstream=upstream, log=tmp_path / "litellm.log"
            )
        finally:
            if proc.returncode is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 15)
                except TimeoutError:
                    os.killpg(proc.pid, signal.SIGKILL)
                    await proc.wait()


async def test_a_thread_with_a_function_tool_through_a_real_litellm_proxy(slack, litellm_proxy, monkeypatch):
    monkeypatch.setenv("ASSIST_BOT_STATE", "auto")
    assistants = Assistants({"acme": Assistant(name="acme", model="local-model", tools=("partner",))}, "acme")
    async with running_bot(
        slack,
        litellm_proxy,
        assistants=assistants,
        OPENAI_API_KEY=MASTER_KEY,
        ASSIST_BOT_TOOL_MODULES="tests.support.acme_tools",
    ) as bot:
        assert bot.bot.backends.for_assistant(assistants.default).state == "local"  # auto: no conversations
        first = mention("C1", "U1", "please use the tool")
        await bot.send(first)
        await wait_for(lambda: any("Tool said: partner here" in m.text for m in slack.bot_messages("C1")), 60)
        await bot.send(message("C1", "U1", "what did it say?", thread_ts=first["ts"]))
        await wait_for(
            lambda: any("You said: [user-U1 (U1)] what did it say?" in m.text for m in slack.bot_messages("C1")), 60
        )
    upstream = litellm_proxy.upstream
    last = upstream.seen_texts(len(upstream.requests) - 1)
    assert "[user-U1 (U1)] please use the tool" in last  # the model behind the proxy sees the first turn
    assert "partner here" in last and "Tool said: partner here" in last  # its tool output and answer too
