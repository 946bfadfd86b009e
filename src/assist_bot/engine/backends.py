"""Model servers: which client each assistant talks to, how its threads keep their
state there (engine/state.py), and whether the server runs hosted tools.

Resolved once at start: `auto` asks each server whether it has the Conversations API
(one conversation created and deleted). A server without it gets `local`, even if it
accepts `previous_response_id`: accepting the parameter does not prove it keeps the
history (the LiteLLM proxy without a database drops it silently), so `response_chain`
is only ever chosen explicitly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import openai

from assist_bot.assistants import Assistant, Assistants
from assist_bot.assistants import Backend as BackendConfig
from assist_bot.engine.state import Mode
from assist_bot.errors import SettingsError
from assist_bot.settings import Settings, secret_from_environment

log = logging.getLogger(__name__)

OPENAI_HOST = "api.openai.com"
AZURE_HOST_SUFFIX = ".openai.azure.com"
# A server of our own gets no OpenAI key unless the assistants file names one for it.
NO_KEY = "unused"


@dataclass(frozen=True, slots=True)
class Backend:
    client: openai.AsyncOpenAI
    state: Mode
    hosted_tools: bool
    history_tokens: int | None
    where: str  # the server, for logs and `assist-bot check` (no secrets)
    # The server takes `truncation` and `context_management` (OpenAI, Azure, a server with the
    # Conversations API): the default `context = "truncate"` is only sent to such servers.
    server_context: bool = False
    # Which server and account (assistants.Backend.server, no secrets; "" the bot's own): what
    # the bot keeps there (knowledge, files) is recorded with it, and used only there.
    server: str = ""


_Endpoint = tuple[str | None, str | None, str | None, str | None]  # base_url, key variable, azure, version
# A fresh HTTP client for each model server's SDK client: the app's counts every call and
# the tokens it reports (instrument.py), so every server shows in /metrics as the default does.
HttpClientFactory = Callable[[], openai.DefaultAsyncHttpxClient]


def default_client(
    settings: Settings, *, http_client: openai.DefaultAsyncHttpxClient | None = None
) -> openai.AsyncOpenAI:
    """The client of the bot's own model server (OPENAI_API_KEY at OPENAI_BASE_URL): the one
    the bot, `assist-bot chat` and `assist-bot cleanup` all hand to Backends as its default."""
    return openai.AsyncOpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        max_retries=settings.openai_max_retries,
        timeout=settings.response_timeout,
        http_client=http_client,
    )


def _endpoint_of(config: BackendConfig) -> _Endpoint:
    return (config.base_url, config.api_key_env, config.azure_endpoint, config.api_version)


class Backends:
    def __init__(
        self,
        *,
        settings: Settings,
        assistants: Assistants,
        default_client: openai.AsyncOpenAI,
        http_client: HttpClientFactory | None = None,
    ) -> None:
        self._settings = settings
        self._assistants = assistants
        self._http_client = http_client
        self.default_client = default_client  # the caller's, which it closes
        self._clients: dict[_Endpoint, openai.AsyncOpenAI] = {(None, None, None, None): default_client}
        self._probed: dict[_Endpoint, bool] = {}
        self._by_assistant: dict[str, Backend] = {}

    async def resolve(self) -> dict[str, Backend]:
        """Decide every assistant's backend (probing servers in `auto` mode, once each)."""
        for name in self._assistants.names():
            backend = await self._resolve(self._assistants.get(name).backend)
            self._by_assistant[name] = backend
            log.info(
                "assistant %s: %s, state %s, hosted tools %s",
                name,
                backend.where,
                backend.state,
                "on" if backend.hosted_tools else "off",
            )
        return dict(self._by_assistant)

    def for_assistant(self, assistant: Assistant) -> Backend:
        backend = self._by_assistant.get(assistant.name)
        if backend is None:
            raise RuntimeError("Backends.resolve() must run before the first turn")
        return backend

    def of_channel(self, assistant_name: str | None) -> tuple[Assistant, Backend]:
        """The assistant a channel names (its `assistant` setting, or the default) and its backend."""
        assistant = self._assistants.get(assistant_name)
        return assistant, self.for_assistant(assistant)

    def client_at(self, server: str) -> openai.AsyncOpenAI | None:
        """The client of a model server by its identity (assistants.Backend.server, as the ledger
        records it with what was made there): "" is the default client. None (logged) when no
        assistant names that server any more or its key's variable is unset: what is kept there
        stays recorded, for clean-up to try again — never asked of another server instead."""
        if not server:
            return self.default_client
        for name in self._assistants.names():
            config = self._assistants.get(name).backend
            if config.server == server:
                try:
                    return self._client(_endpoint_of(config))
                except SettingsError as exc:
                    log.warning("no client for the model server %s: %s", server, exc)
                    return None
        log.warning("no assistant names the model server %s any more", server)
        return None

    async def close(self) -> None:
        # The default client belongs to the caller.
        for endpoint, client in self._clients.items():
            if endpoint != (None, None, None, None):
                await client.close()

    async def _resolve(self, config: BackendConfig) -> Backend:
        endpoint = _endpoint_of(config)
        client = self._client(endpoint)
        wanted = config.state or self._settings.state
        if wanted == "auto":
            if endpoint not in self._probed:
                self._probed[endpoint] = await has_conversations(client, where=self._where(endpoint))
            state: Mode = "conversation" if self._probed[endpoint] else "local"
        else:
            state = wanted
        official = state == "conversation" or self._is_openai(endpoint)
        hosted = config.hosted_tools if config.hosted_tools is not None else official
        # Truncation and compaction are OpenAI's (and Azure's); other servers may refuse the parameters.
        server_context = official or self._is_azure(endpoint)
        return Backend(
            client, state, hosted, config.history_tokens, self._where(endpoint), server_context, config.server
        )

    def _client(self, endpoint: _Endpoint) -> openai.AsyncOpenAI:
        if endpoint not in self._clients:
            base_url, key_env, azure, version = endpoint
            key = secret_from_environment(key_env) if key_env else None
            if key_env and key is None:
                raise SettingsError(f"{key_env} is not set (an assistant's api_key_env names it)")
            api_key = key.get_secret_value() if key else NO_KEY
            retries, timeout = self._settings.openai_max_retries, self._settings.response_timeout
            if azure and not version:
                raise SettingsError(f"an assistant on Azure ({azure}) needs api_version beside azure_endpoint")
            http_client = self._http_client() if self._http_client else None
            if azure:
                self._clients[endpoint] = openai.AsyncAzureOpenAI(
                    azure_endpoint=azure,
                    api_version=version,
                    api_key=api_key,
                    max_retries=retries,
                    timeout=timeout,
                    http_client=http_client,
                )
            else:
                self._clients[endpoint] = openai.AsyncOpenAI(
                    base_url=base_url, api_key=api_key, max_retries=retries, timeout=timeout, http_client=http_client
                )
        return self._clients[endpoint]

    def _is_openai(self, endpoint: _Endpoint) -> bool:
        base_url, _, azure, _ = endpoint
        url = base_url or (None if azure else self._settings.openai_base_url)
        return not azure and (url is None or urlsplit(url).hostname == OPENAI_HOST)

    def _is_azure(self, endpoint: _Endpoint) -> bool:
        base_url, _, azure, _ = endpoint
        host = urlsplit(base_url or self._settings.openai_base_url or "").hostname or ""
        return bool(azure) or host.endswith(AZURE_HOST_SUFFIX)

    def _where(self, endpoint: _Endpoint) -> str:
        base_url, _, azure, _ = endpoint
        url = azure or base_url or self._settings.openai_base_url or f"https://{OPENAI_HOST}/v1"
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


async def has_conversations(client: openai.AsyncOpenAI, *, where: str) -> bool:
    """Does the server have the Conversations API? One made and deleted tells."""
    try:
        conversation = await client.conversations.create(metadata={"assist_bot": "probe"})
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        raise SettingsError(f"the model server at {where} refused the API key ({exc.status_code})") from None
    except openai.APIStatusError as exc:
        if exc.status_code >= 500 or exc.status_code == 429:
            raise SettingsError(
                f"the model server at {where} answered {exc.status_code} when asked for conversations: "
                "try again, or set ASSIST_BOT_STATE"
            ) from None
        log.info("%s has no Conversations API (%s)", where, exc.status_code)
        return False
    except openai.APIConnectionError:
        raise SettingsError(f"the model server at {where} is unreachable (OPENAI_BASE_URL or base_url)") from None
    try:
        await client.conversations.delete(conversation.id)
    except openai.OpenAIError as exc:  # a stray empty conversation harms nobody
        log.debug("could not delete probe conversation: %s", type(exc).__name__)
    return True
