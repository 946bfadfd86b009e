"""A tool's own settings: a pydantic-settings model the tool declares with `@tool(settings=…)`.

Each tool reads only its own variables (an env prefix such as `SMTP_`), so a tool
never holds the bot's Slack or OpenAI credentials. Like the bot's `Settings`, a
missing or invalid value stops start-up with one line naming the variable.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from assist_bot.tools.errors import ToolLoadError

M = TypeVar("M", bound=BaseModel)


class ToolSettings(BaseSettings):
    """Base for a tool's settings: read from the environment and `.env`, frozen.

    Subclasses set `model_config = SettingsConfigDict(env_prefix="MYTOOL_", …)` or
    give each field an alias (`validation_alias="SMTP_FROM"`)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True)


def load_tool_settings(model: type[M], *, tool: str, module: str) -> M:
    try:
        return model()
    except ValidationError as exc:
        raise ToolLoadError(module, f"tool {tool}: {_describe(model, exc)}") from None


def secret_values(config: Any) -> tuple[str, ...]:
    """The SecretStr values of a settings instance (to scrub from error text)."""
    if not isinstance(config, BaseModel):
        return ()
    values = (getattr(config, name) for name in type(config).model_fields)
    return tuple(v.get_secret_value() for v in values if isinstance(v, SecretStr) and v.get_secret_value())


def _describe(model: type[BaseModel], exc: ValidationError) -> str:
    error = exc.errors()[0]
    reason = str(error["msg"]).removeprefix("Value error, ")
    loc = [str(part) for part in error.get("loc", ()) if part]
    if not loc:  # a rule over several fields: its message names them
        return reason
    name = _env_name(model, loc[0])
    if error["type"] == "missing":
        return f"{name} is not set"
    return f"{name} is invalid: {reason}"


def _env_name(model: type[BaseModel], field_name: str) -> str:
    field = model.model_fields.get(field_name)
    alias = field and (field.validation_alias or field.alias)
    if isinstance(alias, str):
        return alias
    prefix = str(model.model_config.get("env_prefix") or "")
    return (prefix + field_name).upper()
