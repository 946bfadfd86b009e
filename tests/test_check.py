"""`assist-bot check`, the installed console script, against the fakes and a real Redis:
one test per line it is meant to catch."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.fakes.smtp import smtp_server
from tests.support.assistants_files import write_assistants_file
from tests.support.console import run_script, script_env
from tests.support.redis_server import free_port

pytestmark = pytest.mark.timeout(60)

HEX_SECRET = "8f14e45fceea167a5a36dedd4bea2543"


@pytest.fixture
def env(slack, openai_fake, redis_url):
    """Settings that all pass: Socket Mode, Redis, the fakes."""
    return {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_API_URL": slack.api_url,
        "OPENAI_API_KEY": openai_fake.api_key,
        "OPENAI_BASE_URL": openai_fake.base_url,
        "REDIS_URL": redis_url,
    }


async def check(tmp_path, **values):
    return await run_script("check", env=script_env(**values), cwd=tmp_path)


async def test_all_pass_one_line_each_and_exit_0(env, tmp_path):
    result = await check(tmp_path, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.line("settings") == "ok settings: Socket Mode, Redis store"
    assert result.line("assistants").startswith("ok assistants: the built-in one (default)")
    assert result.line("slack").startswith("ok slack: bot token works: team Fake Team (T1)")
    assert result.line("slack scopes").startswith("ok slack scopes: all")
    assert result.line("socket mode") == "ok socket mode: the app-level token opens connections"
    assert result.line("redis").endswith(", standalone")
    assert "answers PING: Redis " in result.line("redis")
    assert result.line("openai") == "ok openai: the API key works"
    assert result.line("model gpt-5.4-mini") == "ok model gpt-5.4-mini: available (assistants: default)"
    assert all(line.startswith("ok ") for line in result.lines)


async def test_settings_that_do_not_load(env, tmp_path):
    result = await check(tmp_path, **{**env, "OPENAI_API_KEY": None})
    assert result.returncode == 1
    assert result.lines == [
        "failed  settings: OPENAI_API_KEY is not set: set it to an OpenAI API key (sk-…) "
        "— fix: see the Settings table in README.md"
    ]
    assert "Traceback" not in result.stderr


async def test_a_broken_assistants_file(env, tmp_path):
    broken = write_assistants_file(
        tmp_path, 'version = 1\ndefault = "missing"\n[assistants.general]\ninstructions = "hi"\n'
    )
    result = await check(tmp_path, **env, ASSIST_BOT_ASSISTANTS=broken)
    assert result.returncode == 1
    assert result.line("assistants").startswith(f"failed assistants: assistants file {broken}")
    assert "fix: correct the file" in result.line("assistants")
    assert result.line("openai").startswith("ok")  # the other lines still run


async def test_a_refused_bot_token(env, tmp_path):
    result = await check(tmp_path, **{**env, "SLACK_BOT_TOKEN": "xoxb-wrong"})
    assert result.returncode == 1
    assert result.line("slack").startswith("failed slack: Slack refused SLACK_BOT_TOKEN (invalid_auth) — fix: copy")
    assert "xoxb-wrong" not in result.stdout + result.stderr


async def test_scopes_missing_from_the_token(env, slack, tmp_path):
    slack.granted_scopes.remove("users:read")
    slack.granted_scopes.remove("reactions:write")
    result = await check(tmp_path, **env)
    assert result.returncode == 1
    line = result.line("slack scopes")
    assert line.startswith("failed slack scopes: missing reactions:write, users:read — fix:")
    assert "reinstall the app" in line


async def test_a_refused_app_token(env, tmp_path):
    result = await check(tmp_path, **{**env, "SLACK_APP_TOKEN": "xapp-wrong"})
    assert result.returncode == 1
    assert result.line("socket mode").startswith("failed socket mode: Slack refused SLACK_APP_TOKEN (invalid_auth)")
    assert "connections:write" in result.line("socket mode")


async def test_http_mode_signing_secret(env, tmp_path):
    http = {**env, "SLACK_APP_TOKEN": None}
    odd = await check(tmp_path, **http, SLACK_SIGNING_SECRET="not-a-slack-secret")
    assert odd.returncode == 0  # a warning does not fail the check
    assert odd.line("http mode").startswith("warning http mode: SLACK_SIGNING_SECRET does not look like Slack's")
    good = await check(tmp_path, **http, SLACK_SIGNING_SECRET=HEX_SECRET)
    assert good.line("http mode").startswith("ok http mode: signing secret set")
    assert good.line("settings") == "ok settings: HTTP mode on port 3000, Redis store"


async def test_a_refused_openai_key(env, tmp_path):
    result = await check(tmp_path, **{**env, "OPENAI_API_KEY": "sk-wrong-key"})
    assert result.returncode == 1
    assert result.line("openai").startswith("failed openai: OpenAI refused OPENAI_API_KEY (invalid_api_key)")
    assert "sk-wrong-key" not in result.stdout + result.stderr


async def test_an_assistant_on_a_model_that_does_not_exist(env, tmp_path):
    file = write_assistants_file(
        tmp_path,
        'version = 1\ndefault = "general"\n[assistants.general]\ninstructions = "hi"\n'
        '[assistants.lab]\ninstructions = "hi"\nmodel = "gpt-imaginary"\n',
    )
    result = await check(tmp_path, **env, ASSIST_BOT_ASSISTANTS=file)
    assert result.returncode == 1
    assert result.line("model gpt-imaginary").startswith(
        "failed model gpt-imaginary: does not exist or this key cannot use it (assistants: lab)"
    )
    assert result.line("model gpt-5.4-mini").startswith("ok")


async def test_a_model_retiring_within_60_days_is_a_warning_naming_it(env, openai_fake, tmp_path):
    soon = date.today() + timedelta(days=9)
    openai_fake.model_routes.models["gpt-5"] = soon.isoformat()
    openai_fake.model_routes.models["gpt-5.4-mini"] = (date.today() + timedelta(days=90)).isoformat()
    file = write_assistants_file(
        tmp_path,
        'version = 1\ndefault = "general"\n[assistants.general]\ninstructions = "hi"\n'
        '[assistants.old]\ninstructions = "hi"\nmodel = "gpt-5"\n',
    )
    result = await check(tmp_path, **env, ASSIST_BOT_ASSISTANTS=file)
    assert result.returncode == 0
    assert result.line("model gpt-5") == (
        f"warning model gpt-5: gpt-5 shuts down on {soon.isoformat()} (in 9 days; used by old) "
        "— fix: move these assistants to a current model"
    )
    assert result.line("model gpt-5.4-mini").startswith("ok")  # 90 days away: not yet


async def test_redis_that_does_not_answer(env, tmp_path):
    result = await check(tmp_path, **{**env, "REDIS_URL": f"redis://:secret-pw@127.0.0.1:{free_port()}/0"})
    assert result.returncode == 1
    line = result.line("redis")
    assert line.startswith("failed redis: 127.0.0.1:") and "does not answer (ConnectionError)" in line
    assert "secret-pw" not in result.stdout + result.stderr


async def test_a_redis_cluster_answers_with_its_nodes(env, redis_cluster_url, tmp_path):
    result = await check(tmp_path, **{**env, "REDIS_URL": redis_cluster_url})
    assert result.returncode == 0, result.stdout + result.stderr
    line = result.line("redis")
    assert line.startswith("ok redis: 127.0.0.1:") and "answers PING: Redis " in line
    assert line.endswith(", cluster of 3 nodes (3 primaries)")


async def test_a_redis_cluster_that_does_not_answer(env, tmp_path):
    result = await check(tmp_path, **{**env, "REDIS_URL": f"redis+cluster://:secret-pw@127.0.0.1:{free_port()}"})
    assert result.returncode == 1
    line = result.line("redis")
    assert line.startswith("failed redis: 127.0.0.1:") and " does not answer (" in line
    assert "fix: check REDIS_URL (redis+cluster://[:password@]host:port) and that Redis runs" in line
    assert "secret-pw" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


async def test_a_plain_redis_url_naming_a_cluster_node_is_refused_with_the_fix(env, redis_cluster_url, tmp_path):
    """The store would get MOVED for most keys: the check says how to write the URL."""
    plain = redis_cluster_url.replace("redis+cluster://", "redis://:secret-pw@")
    result = await check(tmp_path, **{**env, "REDIS_URL": plain})
    assert result.returncode == 1
    line = result.line("redis")
    assert line.startswith("failed redis: 127.0.0.1:") and "is a node of a Redis Cluster" in line
    assert "fix: write REDIS_URL as redis+cluster://" in line
    assert "secret-pw" not in result.stdout + result.stderr


async def test_without_redis_the_memory_store_is_named(env, tmp_path):
    result = await check(tmp_path, **{**env, "REDIS_URL": None})
    assert result.returncode == 0
    assert result.line("store").startswith("ok store: in-process memory")


async def test_smtp_when_configured(env, tmp_path):
    async with smtp_server() as (controller, _):
        smtp = {**env, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": controller.port, "SMTP_FROM": "bot@example.com"}
        relay = await check(tmp_path, **smtp, SMTP_STARTTLS="false")
        no_tls = await check(tmp_path, **smtp)
    assert relay.returncode == 0 and relay.line("smtp") == f"ok smtp: 127.0.0.1:{controller.port} answers EHLO"
    assert no_tls.returncode == 1
    assert no_tls.line("smtp").startswith(f"failed smtp: 127.0.0.1:{controller.port} answers but offers no STARTTLS")
    down = await check(tmp_path, **env, SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(), SMTP_FROM="bot@example.com")
    assert down.returncode == 1 and down.line("smtp").startswith("failed smtp: 127.0.0.1:")
    half = await check(tmp_path, **env, SMTP_HOST="127.0.0.1")
    assert half.returncode == 1
    assert half.line("smtp").startswith("failed smtp: set both SMTP_HOST and SMTP_FROM")


async def test_the_same_retirement_warning_is_logged_at_start(slack, openai_fake, caplog):
    from tests.fakes.slack import wait_for
    from tests.support.bot import running_bot

    soon = date.today() + timedelta(days=30)
    openai_fake.model_routes.models["gpt-5"] = soon.isoformat()
    caplog.set_level("WARNING", logger="assist_bot.models")
    async with running_bot(slack, openai_fake, ASSIST_BOT_MODEL="gpt-5"):
        await wait_for(lambda: [r for r in caplog.records if r.name == "assist_bot.models"])
    (record,) = [r for r in caplog.records if r.name == "assist_bot.models"]
    assert record.getMessage() == (
        f"model retirement: gpt-5 shuts down on {soon.isoformat()} (in 30 days; used by default) "
        "— move these assistants to a current model"
    )


async def test_a_compatible_server_without_a_models_list_is_a_warning(env, tmp_path):
    from aiohttp import web

    app = web.Application()  # answers every path with OpenAI's 404 shape
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        base = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        result = await check(tmp_path, **{**env, "OPENAI_BASE_URL": base})
    finally:
        await runner.cleanup()
    assert result.returncode == 0
    assert result.line("openai").startswith("warning openai: the server at OPENAI_BASE_URL lists no models")


async def test_many_workspaces_check_the_client_id_and_secret(env, slack, tmp_path):
    oauth = {
        **env,
        "SLACK_BOT_TOKEN": None,
        "SLACK_APP_TOKEN": None,
        "SLACK_SIGNING_SECRET": HEX_SECRET,
        "SLACK_CLIENT_ID": slack.client_id,
        "SLACK_CLIENT_SECRET": slack.client_secret,
        "SLACK_STATE_SECRET": "state-secret-for-tests",
    }
    good = await check(tmp_path, **oauth)
    assert good.returncode == 0, good.stdout
    assert good.line("slack oauth").startswith("ok slack oauth: Slack accepts the client id and secret")
    bad = await check(tmp_path, **{**oauth, "SLACK_CLIENT_SECRET": "wrong-secret"})
    assert bad.returncode == 1
    assert bad.line("slack oauth").startswith("failed slack oauth: Slack refused SLACK_CLIENT_ID / SLACK_CLIENT_SECRET")
    assert "wrong-secret" not in bad.stdout + bad.stderr
