"""Settings: the only place the environment (and `.env`) is read.

One frozen object is built at start-up and passed explicitly to whatever needs it.
A missing or invalid value stops start-up with one line that names the variable
(`SettingsError`), never a traceback.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from assist_bot.errors import SettingsError

DEFAULT_MODEL = "gpt-5.4-mini"


class Settings(BaseSettings):
    """Every setting of assist-bot; field aliases are the environment variable names."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    # --- Slack -------------------------------------------------------------
    # Required unless the app is installed in many workspaces (OAuth: SLACK_CLIENT_ID …).
    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    # Many workspaces (HTTP mode): Slack's OAuth install flow instead of one SLACK_BOT_TOKEN.
    slack_client_id: str | None = Field(default=None, alias="SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(default=None, alias="SLACK_CLIENT_SECRET")
    slack_state_secret: SecretStr | None = Field(default=None, alias="SLACK_STATE_SECRET")
    slack_redirect_uri: str | None = Field(default=None, alias="SLACK_REDIRECT_URI")
    token_rotation_minutes: int = Field(default=120, ge=1, le=1440, alias="ASSIST_BOT_TOKEN_ROTATION_MINUTES")

    # --- OpenAI ------------------------------------------------------------
    openai_api_key: SecretStr = Field(alias="OPENAI_API_KEY")
    # The SDK's own variable; None lets the SDK use its default endpoint.
    openai_base_url: str | None = Field(default=None, alias="OPENAI_BASE_URL")
    model: str = Field(default=DEFAULT_MODEL, alias="ASSIST_BOT_MODEL")
    openai_max_retries: int = Field(default=2, ge=0, le=10, alias="ASSIST_BOT_OPENAI_MAX_RETRIES")
    # How a thread's history is kept: on the server (a conversation, or a chain of stored
    # responses) or by the bot itself (`local`); `auto` asks the server at start.
    state: Literal["auto", "conversation", "response_chain", "local"] = Field(default="auto", alias="ASSIST_BOT_STATE")

    # --- State and transport ------------------------------------------------
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    redis_max_connections: int = Field(default=50, ge=1, le=10_000, alias="ASSIST_BOT_REDIS_MAX_CONNECTIONS")
    port: int = Field(default=3000, ge=0, le=65535, alias="PORT")
    host: str = Field(default="0.0.0.0", alias="ASSIST_BOT_HOST")
    assistants_file: Path | None = Field(default=None, alias="ASSIST_BOT_ASSISTANTS")
    # HTTP mode's guard against slow or idle clients: a connection must send its request
    # headers within the header time-out (it is also the idle keep-alive), its body
    # within the body time-out; past the connection limit new connections are closed.
    http_header_timeout: float = Field(default=10.0, gt=0, le=300, alias="ASSIST_BOT_HTTP_HEADER_TIMEOUT")
    http_body_timeout: float = Field(default=10.0, gt=0, le=300, alias="ASSIST_BOT_HTTP_BODY_TIMEOUT")
    http_max_connections: int = Field(default=500, ge=1, le=100_000, alias="ASSIST_BOT_HTTP_MAX_CONNECTIONS")

    # --- Behaviour ------------------------------------------------------------
    update_interval: float = Field(default=1.0, gt=0, le=60, alias="ASSIST_BOT_UPDATE_INTERVAL")
    # native: Slack's chat.startStream/appendStream/stopStream; edit: chat.update (also the fallback).
    stream_mode: Literal["native", "edit"] = Field(default="native", alias="ASSIST_BOT_STREAM_MODE")
    response_timeout: float = Field(default=120.0, gt=0, alias="ASSIST_BOT_RESPONSE_TIMEOUT")
    slack_updates_per_minute: float = Field(default=50.0, gt=0, alias="ASSIST_BOT_SLACK_UPDATES_PER_MINUTE")
    # chat.appendStream is Tier 4 ("100+ per minute"), undocumented whether per workspace or per
    # stream. Unset: each stream appends at its own pace and a 429 teaches the workspace's limit
    # (slack/pacing.py); a number: a ceiling per workspace that progress appends share.
    slack_appends_per_minute: float | None = Field(default=None, gt=0, alias="ASSIST_BOT_SLACK_APPENDS_PER_MINUTE")
    max_concurrent_turns: int = Field(default=100, ge=1, le=100_000, alias="ASSIST_BOT_MAX_CONCURRENT_TURNS")
    retention_days: float = Field(default=30.0, gt=0, alias="ASSIST_BOT_RETENTION_DAYS")
    shutdown_grace: float = Field(default=20.0, ge=0, alias="ASSIST_BOT_SHUTDOWN_GRACE")
    # Seconds a thread's lock outlives a replica that died mid-answer; the owner refreshes it at
    # half-time, and every replica's sweeper looks for lapsed ones that often (one sweeps at a time).
    lock_lease: float = Field(default=60.0, ge=1, le=3600, alias="ASSIST_BOT_LOCK_LEASE")
    # --- Tools (function tools, slash commands, consent) -------------------------
    tool_modules: str = Field(default="", alias="ASSIST_BOT_TOOL_MODULES")
    admins: str = Field(default="", alias="ASSIST_BOT_ADMINS")
    tool_timeout: float = Field(default=30.0, gt=0, alias="ASSIST_BOT_TOOL_TIMEOUT")
    tool_max_rounds: int = Field(default=8, ge=1, le=50, alias="ASSIST_BOT_TOOL_MAX_ROUNDS")
    approval_timeout: float = Field(default=600.0, gt=0, alias="ASSIST_BOT_APPROVAL_TIMEOUT")
    # Calls of side-effect tools (each one a consent prompt) one answer may make; the rest are refused.
    max_side_effect_calls: int = Field(default=3, ge=1, le=100, alias="ASSIST_BOT_MAX_SIDE_EFFECT_CALLS")

    # --- Caps on what one thread may ask at once (the rest is refused, with a note to its author) ---
    max_queued_messages: int = Field(default=20, ge=1, le=10_000, alias="ASSIST_BOT_MAX_QUEUED_MESSAGES")
    max_queued_bytes: int = Field(default=200_000, ge=1_000, le=100_000_000, alias="ASSIST_BOT_MAX_QUEUED_BYTES")
    max_message_chars: int = Field(default=16_000, ge=1, le=1_000_000, alias="ASSIST_BOT_MAX_MESSAGE_CHARS")
    # A tool's own settings (SMTP_*, OPEN_METEO_*) live with the tool: assist_bot/tools/builtin.

    # --- Files ---------------------------------------------------------------------
    max_file_mb: float = Field(default=50.0, gt=0, alias="ASSIST_BOT_MAX_FILE_MB")
    # Files downloaded and handed to OpenAI at once per process (each may hold ASSIST_BOT_MAX_FILE_MB in memory).
    max_concurrent_downloads: int = Field(default=4, ge=1, le=1000, alias="ASSIST_BOT_MAX_CONCURRENT_DOWNLOADS")
    vector_store_expiry_days: int = Field(default=365, ge=1, le=365, alias="ASSIST_BOT_VECTOR_STORE_EXPIRY_DAYS")

    # --- Costs, budgets and clean-up (README "Costs and budgets", "Clean-up") --------------
    prices: str = Field(default="", alias="ASSIST_BOT_PRICES")
    token_budget_workspace: int = Field(default=0, ge=0, alias="ASSIST_BOT_TOKEN_BUDGET_WORKSPACE")
    token_budget_channel: int = Field(default=0, ge=0, alias="ASSIST_BOT_TOKEN_BUDGET_CHANNEL")
    token_budget_user: int = Field(default=0, ge=0, alias="ASSIST_BOT_TOKEN_BUDGET_USER")
    cleanup_interval: float = Field(default=3600.0, ge=0, alias="ASSIST_BOT_CLEANUP_INTERVAL")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", alias="ASSIST_BOT_LOG_LEVEL")
    # --- Operating: metrics and logs -----------------------------------------------------
    metrics_port: int | None = Field(default=None, ge=0, le=65535, alias="ASSIST_BOT_METRICS_PORT")
    log_format: Literal["text", "json"] = Field(default="text", alias="ASSIST_BOT_LOG_FORMAT")
    log_content: bool = Field(default=False, alias="ASSIST_BOT_LOG_CONTENT")

    @field_validator("slack_bot_token", "openai_api_key", "slack_client_secret", "slack_state_secret")
    @classmethod
    def _not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("is empty")
        return value

    @field_validator("slack_app_token", "slack_signing_secret", "slack_appends_per_minute", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `VAR=` (what docker-compose gives for an unset ${VAR}) means "not set", never "the empty secret".
        if isinstance(value, str | SecretStr):
            raw = value.get_secret_value() if isinstance(value, SecretStr) else value
            if not raw.strip():
                return None
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url_is_https(cls, value: str) -> str:
        # The bot token travels with every call.
        value = https_unless_loopback(value, example="https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @field_validator("openai_base_url")
    @classmethod
    def _openai_url_is_https(cls, value: str | None) -> str | None:
        # The API key travels with every call.
        return None if value is None else https_unless_loopback(value, example="https://api.openai.com/v1")

    @field_validator("prices")
    @classmethod
    def _prices_parse(cls, value: str) -> str:
        from assist_bot.usage import parse_prices

        try:
            parse_prices(value)
        except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
            raise ValueError(str(exc).splitlines()[0]) from None
        return value

    @field_validator("assistants_file")
    @classmethod
    def _assistants_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _one_workspace_or_oauth(self) -> Settings:
        if self.slack_client_id is None:
            if self.slack_client_secret is not None or self.slack_state_secret is not None:
                raise ValueError("SLACK_CLIENT_ID is not set: it goes with SLACK_CLIENT_SECRET and SLACK_STATE_SECRET")
            if self.slack_bot_token is None:
                raise ValueError(f"SLACK_BOT_TOKEN is not set: {_HINTS['SLACK_BOT_TOKEN']}")
            return self
        secrets = {"SLACK_CLIENT_SECRET": self.slack_client_secret, "SLACK_STATE_SECRET": self.slack_state_secret}
        for name, value in secrets.items():
            if value is None:
                raise ValueError(f"{name} is not set: {_HINTS[name]}")
        if self.slack_bot_token is not None:
            raise ValueError(
                "SLACK_BOT_TOKEN and SLACK_CLIENT_ID are both set: unset SLACK_BOT_TOKEN to install in many "
                "workspaces (OAuth), or SLACK_CLIENT_ID for one workspace"
            )
        if self.slack_app_token is not None:
            raise ValueError("SLACK_CLIENT_ID (many workspaces) needs HTTP mode: unset SLACK_APP_TOKEN")
        return self

    @model_validator(mode="after")
    def _http_mode_needs_signing_secret(self) -> Settings:
        if self.slack_app_token is None and self.slack_signing_secret is None:
            raise ValueError(
                "SLACK_SIGNING_SECRET is required in HTTP mode and is not set or blank "
                "(set it from the app's Basic Information page, or set SLACK_APP_TOKEN for Socket Mode)"
            )
        return self

    @model_validator(mode="after")
    def _metrics_port_is_its_own(self) -> Settings:
        if self.metrics_port and self.metrics_port == self.port and self.slack_app_token is None:
            raise ValueError("ASSIST_BOT_METRICS_PORT must differ from PORT (HTTP mode serves /metrics on PORT too)")
        return self

    @property
    def oauth(self) -> bool:
        """Installed in many workspaces (each with its own token) rather than one (SLACK_BOT_TOKEN)."""
        return self.slack_client_id is not None

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @property
    def tool_module_names(self) -> list[str]:
        return [name.strip() for name in self.tool_modules.split(",") if name.strip()]

    @property
    def admin_ids(self) -> frozenset[str]:
        return frozenset(user.strip() for user in self.admins.split(",") if user.strip())

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def model_prices(self) -> dict[str, tuple[float, float, float]]:
        from assist_bot.usage import parse_prices

        return parse_prices(self.prices)

    @property
    def retention_seconds(self) -> int:
        return int(self.retention_days * 86400)


def https_unless_loopback(value: str, *, example: str) -> str:
    """A URL that a secret is sent to: https, or plain http only to this machine (a local
    model server, a test double), where nothing crosses a network."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an https URL such as {example}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("must use https (http is allowed only for a loopback host such as 127.0.0.1)")
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ChatSettings(Settings):
    """`assist-bot chat` talks to no Slack: it needs only the OpenAI key, whatever Slack
    settings the environment holds (or lacks)."""

    # Same names as Settings' rules: these replace them.
    @model_validator(mode="after")
    def _one_workspace_or_oauth(self) -> ChatSettings:
        return self

    @model_validator(mode="after")
    def _http_mode_needs_signing_secret(self) -> ChatSettings:
        return self


_HINTS = {
    "SLACK_BOT_TOKEN": "set it to the app's Bot User OAuth Token (xoxb-…)",
    "OPENAI_API_KEY": "set it to an OpenAI API key (sk-…)",
    "SLACK_CLIENT_SECRET": "copy the Client Secret from the app's Basic Information page",
    "SLACK_STATE_SECRET": "set it to a long random string (it signs the OAuth state of installs)",
}


def load_settings(*, chat: bool = False, **overrides: object) -> Settings:
    """Build Settings from the environment; raise SettingsError with one readable line."""
    try:
        return (ChatSettings if chat else Settings)(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = [str(part) for part in error.get("loc", ()) if part]
    if not loc:  # a model-level rule: its message already names the variable
        return str(error["msg"]).removeprefix("Value error, ")
    name = _env_name(loc[0])
    if error["type"] == "missing":
        return f"{name} is not set: {_HINTS.get(name, 'set it in the environment or in .env')}"
    reason = str(error["msg"]).removeprefix("Value error, ")
    if reason == "is empty":
        return f"{name} is empty: {_HINTS.get(name, 'give it a value')}"
    return f"{name} is invalid: {reason}"


def _env_name(field_or_alias: str) -> str:
    field = Settings.model_fields.get(field_or_alias)
    if field is not None and field.alias:
        return field.alias
    return field_or_alias


def secret_from_environment(name: str) -> SecretStr | None:
    """An API key the assistants file names by its variable (keys stay out of that file)."""
    value = os.environ.get(name, "").strip()
    return SecretStr(value) if value else None


__all__ = ["ChatSettings", "Settings", "load_settings", "secret_from_environment", "DEFAULT_MODEL"]
