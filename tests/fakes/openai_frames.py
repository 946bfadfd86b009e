"""SSE frames of the fake OpenAI, checked against the SDK's own event models.

Every frame the fake writes goes through `frame()`: its `type` must name an event class of
`openai.types.responses.ResponseStreamEvent`, the payload must validate against that class
(required fields present, literals right), and no field the class does not declare may be
sent (the SDK models allow extras; we do not, so a shape the SDK does not know cannot slip
in). Recorded real streams are replayed byte for byte instead (see `openai_replay.py`):
the real API sends fewer fields than the SDK declares, which the engine must cope with.
"""

from __future__ import annotations

import json
import typing
from functools import cache
from typing import Any

from openai.types.responses import ResponseStreamEvent
from pydantic import BaseModel

# Fields real streams carry (tests/fakes/openai_payloads/streams) that SDK 3.57 does not declare.
REAL_EXTRAS = frozenset({"store", "frequency_penalty", "presence_penalty", "obfuscation"})


# response.error.code values real failed streams carry (openai_payloads/events/codex-response-failed-*.json)
# that the SDK's Literal does not list; checked as if they were a listed code.
REAL_ERROR_CODES = frozenset({"insufficient_quota", "context_length_exceeded"})


class UnknownShape(AssertionError):
    """The fake tried to send an event the SDK would not recognise."""


@cache
def event_models() -> dict[str, type[BaseModel]]:
    """Event type ("response.output_text.delta"…) → the SDK's model of it."""
    union = typing.get_args(ResponseStreamEvent)[0]  # Annotated[Union[...], discriminator]
    models: dict[str, type[BaseModel]] = {}
    for model in typing.get_args(union):
        (literal,) = typing.get_args(model.model_fields["type"].annotation)
        models[literal] = model
    return models


def _extras(value: Any, path: str) -> list[str]:
    if isinstance(value, BaseModel):
        found = [f"{path}.{key}" for key in value.model_extra or {} if key not in REAL_EXTRAS]
        for name in type(value).model_fields:
            found += _extras(getattr(value, name), f"{path}.{name}")
        return found
    if isinstance(value, list):
        return [extra for item in value for extra in _extras(item, f"{path}[]")]
    return []


def validated(payload: dict[str, Any]) -> BaseModel:
    """The SDK's model of this event; raises UnknownShape for anything it would not know."""
    model = event_models().get(payload.get("type", ""))
    if model is None:
        raise UnknownShape(f"no SDK event type {payload.get('type')!r}")
    error = (payload.get("response") or {}).get("error") or {}
    if error.get("code") in REAL_ERROR_CODES:
        payload = {**payload, "response": {**payload["response"], "error": {**error, "code": "server_error"}}}
    try:
        parsed = model.model_validate(payload)
    except ValueError as exc:
        raise UnknownShape(f"{payload['type']}: {exc}") from None
    extras = _extras(parsed, payload["type"])
    if extras:
        raise UnknownShape(f"fields the SDK does not declare: {extras}")
    return parsed


def frame(payload: dict[str, Any]) -> bytes:
    """One SSE frame `event: <type>\\ndata: <json>\\n\\n`, after checking the payload."""
    validated(payload)
    return f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n".encode()
