"""Turning a tool's result or failure into text for the model."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import Any

import pydantic

from assist_bot.logs import redact

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


def scrub(message: str, secrets: Iterable[str]) -> str:
    """Keep secrets out of what the model (and so the thread) may see: the given
    values (the tool's own secrets and the bot's) and anything shaped like a token."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "[redacted]")
    message = redact(message)
    return message if len(message) <= _MAX_ERROR_CHARS else message[: _MAX_ERROR_CHARS - 1] + "…"
