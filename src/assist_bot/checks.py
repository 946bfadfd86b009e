"""`assist-bot check`: asks each service the bot depends on whether it will work, and
prints one line per answer — ok, warning, or failed with the fix. Exit code 0 only when
nothing failed (warnings pass).

Every probe is bounded in time and says what to change; none prints a secret (a URL
is shown as host:port only, since REDIS_URL may carry a password)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import aiohttp
import aiosmtplib
import openai
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot.assistants import Assistants
from assist_bot.engine.backends import Backends
from assist_bot.errors import AssistBotError
from assist_bot.manifest import BOT_SCOPES
from assist_bot.models import models_in_use, retirement_notices
from assist_bot.settings import Settings

if TYPE_CHECKING:
    from assist_bot.store.redis_client import Client

PROBE_TIMEOUT = 15.0  # seconds one service may take to answer
_SIGNING_SECRET = re.compile(r"^[0-9a-f]{32}$")

Status = Literal["ok", "warning", "failed"]


@dataclass(frozen=True, slots=True)
class Line:
    status: Status
    what: str
    detail: str
    fix: str = ""

    def render(self) -> str:
        fix = f" — fix: {self.fix}" if self.fix else ""
        return f"{self.status:<8}{self.what}: {self.detail}{fix}"


def ok(what: str, detail: str) -> Line:
    return Line("ok", what, detail)


def failed(what: str, detail: str, fix: str) -> Line:
    return Line("failed", what, detail, fix)


async def run_checks(settings: Settings, *, today: date | None = None) -> AsyncIterator[Line]:
    """The lines, in order, each as soon as it is known."""
    mode = "Socket Mode" if settings.socket_mode else f"HTTP mode on port {settings.port}"
    yield ok("settings", f"{mode}, {'Redis' if settings.redis_url else 'in-process'} store")
    assistants: Assistants | None = None
    try:
        assistants = Assistants.load(settings.assistants_file, model=settings.model)
    except AssistBotError as exc:
        yield failed("assistants", str(exc), "correct the file (see assistants.example.toml)")
    else:
        if settings.assistants_file is None:
            yield ok("assistants", f"the built-in one ({assistants.default_name}); no ASSIST_BOT_ASSISTANTS")
        else:
            names = ", ".join(assistants.names())
            yield ok("assistants", f"{names} (default {assistants.default_name}) from {settings.assistants_file}")
    for probe in (_slack, _slack_connection, _redis, _smtp):
        for line in await _bounded(probe.__name__, probe(settings)):
            yield line
    for line in await _bounded("_openai", _openai(settings, assistants, today or date.today())):
        yield line


async def _bounded(name: str, probe: Awaitable[list[Line]]) -> list[Line]:
    what = name.strip("_").replace("_", " ")
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            return await probe
    except TimeoutError:
        return [failed(what, f"no answer within {PROBE_TIMEOUT:.0f} s", "check the address and the network")]


# -- Slack ----------------------------------------------------------------------------------
async def _slack(settings: Settings) -> list[Line]:
    if settings.slack_bot_token is None:
        return [await _slack_oauth(settings)]
    client = AsyncWebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url)
    try:
        response = await client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error")
        fix = "copy the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page into SLACK_BOT_TOKEN"
        return [failed("slack", f"Slack refused SLACK_BOT_TOKEN ({error})", fix)]
    except aiohttp.ClientError as exc:
        return [failed("slack", f"Slack is unreachable ({type(exc).__name__})", "check SLACK_API_URL and the network")]
    lines = [ok("slack", f"bot token works: team {response.get('team')} ({response.get('team_id')})")]
    return [*lines, _scopes(response.headers.get("x-oauth-scopes"))]


async def _slack_oauth(settings: Settings) -> Line:
    """Many workspaces: no token to test, but a made-up code tells whether Slack knows the
    app's client id and secret (`invalid_code` if it does)."""
    secret = settings.slack_client_secret.get_secret_value() if settings.slack_client_secret else ""
    client = AsyncWebClient(base_url=settings.slack_api_url)
    try:
        await client.oauth_v2_access(
            client_id=settings.slack_client_id or "", client_secret=secret, code="assist-bot-check"
        )
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error == "invalid_code":
            return ok("slack oauth", "Slack accepts the client id and secret; workspaces install at /slack/install")
        fix = "copy the Client ID and Client Secret from the app's Basic Information page"
        return failed("slack oauth", f"Slack refused SLACK_CLIENT_ID / SLACK_CLIENT_SECRET ({error})", fix)
    except aiohttp.ClientError as exc:
        return failed("slack oauth", f"Slack is unreachable ({type(exc).__name__})", "check SLACK_API_URL")
    return Line("warning", "slack oauth", "Slack took a made-up code: check SLACK_API_URL")


def _scopes(header: str | None) -> Line:
    if header is None:
        return Line("warning", "slack scopes", "Slack did not say which scopes the token has")
    granted = {scope.strip() for scope in header.split(",") if scope.strip()}
    missing = [scope for scope in BOT_SCOPES if scope not in granted]
    if missing:
        fix = "add them from manifest.yml (App Manifest page) and reinstall the app to the workspace"
        return failed("slack scopes", f"missing {', '.join(missing)}", fix)
    return ok("slack scopes", f"all {len(BOT_SCOPES)} scopes of the manifest granted")


async def _slack_connection(settings: Settings) -> list[Line]:
    if settings.slack_app_token is None:
        return [_signing_secret(settings)]
    client = AsyncWebClient(base_url=settings.slack_api_url)
    try:
        await client.apps_connections_open(app_token=settings.slack_app_token.get_secret_value())
    except SlackApiError as exc:
        fix = (
            "generate an app-level token with connections:write (Basic Information → App-Level Tokens) "
            "into SLACK_APP_TOKEN, and turn Socket Mode on"
        )
        return [failed("socket mode", f"Slack refused SLACK_APP_TOKEN ({exc.response.get('error')})", fix)]
    except aiohttp.ClientError as exc:
        return [failed("socket mode", f"Slack is unreachable ({type(exc).__name__})", "check the network")]
    return [ok("socket mode", "the app-level token opens connections")]


def _signing_secret(settings: Settings) -> Line:
    # Required in HTTP mode (settings refuse to start without it); only its shape can be checked here.
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    if not _SIGNING_SECRET.match(secret):
        fix = "copy the Signing Secret from the app's Basic Information page into SLACK_SIGNING_SECRET"
        return Line("warning", "http mode", "SLACK_SIGNING_SECRET does not look like Slack's (32 hex digits)", fix)
    return ok("http mode", "signing secret set; Slack must reach POST /slack/events on this host")


# -- OpenAI ---------------------------------------------------------------------------------
async def _openai(settings: Settings, assistants: Assistants | None, today: date) -> list[Line]:
    client = openai.AsyncOpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        max_retries=0,
        timeout=PROBE_TIMEOUT,
    )
    async with client:
        try:
            await client.models.list()
        except openai.AuthenticationError as exc:
            fix = "create a key at https://platform.openai.com/api-keys and put it in OPENAI_API_KEY"
            return [failed("openai", f"OpenAI refused OPENAI_API_KEY ({_code(exc)})", fix)]
        except openai.APIConnectionError:
            return [failed("openai", "OpenAI is unreachable", "check OPENAI_BASE_URL and the network")]
        except openai.NotFoundError:  # a compatible server without /models: the key cannot be tested this way
            listed = False
            lines = [Line("warning", "openai", "the server at OPENAI_BASE_URL lists no models; models not checked")]
        except openai.APIStatusError as exc:
            return [failed("openai", f"listing models failed (HTTP {exc.status_code})", "try again later")]
        else:
            listed = True
            lines = [ok("openai", "the API key works")]
        if assistants is not None:
            on_default, backend_lines = await _backends(settings, assistants, client)
            lines += backend_lines
            if listed:
                lines += await _models(client, assistants, on_default, today)
    return lines


async def _backends(
    settings: Settings, assistants: Assistants, client: openai.AsyncOpenAI
) -> tuple[set[str], list[Line]]:
    """Each assistant's model server and how its threads keep state (`auto` asks the server).
    Returns the assistants on the default server too: only their models are looked up there."""
    backends = Backends(settings=settings, assistants=assistants, default_client=client)
    try:
        resolved = await backends.resolve()
    except AssistBotError as exc:
        return set(), [failed("model servers", str(exc), "check the assistants' backend tables and their keys")]
    finally:
        await backends.close()
    lines = []
    for name, backend in resolved.items():
        probed = " (auto: asked the server)" if (assistants.get(name).backend.state or settings.state) == "auto" else ""
        hosted = "on" if backend.hosted_tools else "off"
        lines.append(ok(f"assistant {name}", f"{backend.where}, state {backend.state}{probed}, hosted tools {hosted}"))
    return {name for name, backend in resolved.items() if backend.client is client}, lines


async def _models(client: openai.AsyncOpenAI, assistants: Assistants, names: set[str], today: date) -> list[Line]:
    lines: list[Line] = []
    for model, users in models_in_use(assistants, only=names).items():
        what = f"model {model}"
        try:
            found = await client.models.retrieve(model)
        except openai.NotFoundError:
            fix = "name an existing model in the assistants file (or ASSIST_BOT_MODEL)"
            detail = f"does not exist or this key cannot use it (assistants: {', '.join(users)})"
            lines.append(failed(what, detail, fix))
            continue
        except openai.APIError as exc:
            lines.append(failed(what, f"could not be looked up ({type(exc).__name__})", "try again later"))
            continue
        notices = retirement_notices({model: users}, {model: found.shutdown_date}, today=today)
        if notices:
            lines.append(Line("warning", what, notices[0], "move these assistants to a current model"))
        else:
            lines.append(ok(what, f"available (assistants: {', '.join(users)})"))
    return lines


def _code(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    return str(body.get("code") or exc.status_code)


# -- Redis and SMTP ---------------------------------------------------------------------------
async def _redis(settings: Settings) -> list[Line]:
    if not settings.redis_url:
        return [ok("store", "in-process memory (REDIS_URL not set: one replica only, state lost on restart)")]
    from redis.asyncio.cluster import RedisCluster
    from redis.exceptions import RedisClusterException, RedisError

    from assist_bot.store.redis_client import connect

    # The store's own client (store/redis_client.py): what this line says is what the bot gets,
    # `redis+cluster://` included. Only host:port is shown, never the URL: it may carry a password.
    where = _host_port(settings.redis_url, 6379)
    client = connect(settings.redis_url, max_connections=2)
    try:
        version, kind = await _redis_server(client)
    except (RedisError, RedisClusterException, OSError) as exc:  # the cluster client's own error is no RedisError
        cluster = isinstance(client, RedisCluster)
        form = "redis+cluster://[:password@]host:port" if cluster else "redis://[:password@]host:port/db"
        fix = f"check REDIS_URL ({form}) and that Redis runs"
        return [failed("redis", f"{where} does not answer ({type(exc).__name__})", fix)]
    finally:
        await client.aclose()
    if kind is None:  # one node of a cluster addressed alone: most keys would answer MOVED
        fix = "write REDIS_URL as redis+cluster://[:password@]host:port (any node of it)"
        return [failed("redis", f"{where} is a node of a Redis Cluster, but REDIS_URL names it alone", fix)]
    return [ok("redis", f"{where} answers PING: Redis {version}, {kind}")]


async def _redis_server(client: Client) -> tuple[str, str | None]:
    """The server's version, and what it is: standalone, a cluster of N nodes, or (None) a
    cluster's node that the URL names as if it stood alone."""
    from redis.asyncio.cluster import RedisCluster

    await client.ping()
    if isinstance(client, RedisCluster):
        server = await client.info("server", target_nodes=RedisCluster.DEFAULT_NODE)
        nodes, primaries = len(client.get_nodes()), len(client.get_primaries())
        return str(server.get("redis_version", "?")), f"cluster of {nodes} nodes ({primaries} primaries)"
    server = await client.info("server")
    alone = str((await client.info("cluster")).get("cluster_enabled", 0)) != "1"
    return str(server.get("redis_version", "?")), "standalone" if alone else None


async def _smtp(settings: Settings) -> list[Line]:
    from assist_bot.tools.builtin.email import EmailSettings
    from assist_bot.tools.errors import ToolLoadError
    from assist_bot.tools.settings import load_tool_settings

    try:
        smtp_settings = load_tool_settings(EmailSettings, tool="send_email", module="assist_bot.tools.builtin.email")
    except ToolLoadError as exc:
        return [failed("smtp", exc.reason.removeprefix("tool send_email: "), "see SMTP_* in README.md")]
    if not smtp_settings.configured or not smtp_settings.host:
        return []
    return [await _ehlo(smtp_settings.host, smtp_settings.port, starttls=smtp_settings.starttls)]


async def _ehlo(host: str, port: int, *, starttls: bool) -> Line:
    where = f"{host}:{port}"
    implicit_tls = starttls and port == 465
    smtp = aiosmtplib.SMTP(hostname=host, port=port, use_tls=implicit_tls, start_tls=False, timeout=PROBE_TIMEOUT)
    try:
        await smtp.connect()
        await smtp.ehlo()
        offered = smtp.supports_extension("starttls")
        await smtp.quit()
    except (aiosmtplib.SMTPException, OSError) as exc:
        return failed("smtp", f"{where} does not answer EHLO ({type(exc).__name__})", "check SMTP_HOST and SMTP_PORT")
    if starttls and not implicit_tls and not offered:
        fix = "use a server with STARTTLS, or SMTP_STARTTLS=false for a local relay"
        return failed("smtp", f"{where} answers but offers no STARTTLS", fix)
    return ok("smtp", f"{where} answers EHLO")


def _host_port(url: str, default_port: int) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or '?'}:{parts.port or default_port}"


async def print_checks(settings: Settings, write: Callable[[str], None]) -> int:
    """Print every line; 0 when none failed, else 1."""
    worst = 0
    async for line in run_checks(settings):
        write(line.render())
        worst = max(worst, 1 if line.status == "failed" else 0)
    return worst
