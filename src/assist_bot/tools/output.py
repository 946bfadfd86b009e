"""Turning a tool's result or failure into text for the model."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pydantic

from assist_bot.logs import redact
from assist_bot.settings import Settings

# The model needs the gist of an error, not a page of it.
_MAX_ERROR_CHARS = 500


def as_text(result: Any) -> str:
    return result if isinstance(result, str) else json.dumps(result, default=_json_default, ensure_ascii=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def scrub(message: str, settings: Settings) -> str:
    """Keep secrets out of what the model (and so the thread) may see."""
    secrets = [
        settings.slack_bot_token,
        settings.openai_api_key,
        settings.slack_app_token,
        settings.slack_signing_secret,
        settings.smtp_password,
    ]
    for secret in secrets:
        if secret is not None and secret.get_secret_value():
            message = message.replace(secret.get_secret_value(), "[redacted]")
    message = redact(message)
    return message if len(message) <= _MAX_ERROR_CHARS else message[: _MAX_ERROR_CHARS - 1] + "…"
