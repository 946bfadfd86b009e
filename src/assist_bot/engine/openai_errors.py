"""Map OpenAI SDK exceptions onto TurnError kinds (user-facing texts live in texts.py)."""

from __future__ import annotations

import importlib

import openai

from assist_bot.errors import TurnError


def is_conversation_locked(exc: BaseException) -> bool:
    return isinstance(exc, openai.BadRequestError) and getattr(exc, "code", None) == "conversation_locked"


def is_missing_conversation(exc: BaseException) -> bool:
    """The stored conversation was deleted or expired on OpenAI's side (and not, say,
    a vector store or a model that is missing: those must not cost the thread its history)."""
    if not isinstance(exc, openai.NotFoundError):
        return False
    param = getattr(exc, "param", None) or ""
    return "conversation" in param or "conversation" in (getattr(exc, "message", "") or "").lower()


# `error.code` of a failed stream (response.failed / an `error` event) → TurnError kind, so the
# user reads what happened and what to do (texts.FAILURES). Codes as the API sends them
# (tests/fakes/openai_payloads/events/codex-response-failed-*.json).
STREAM_FAILURES = {
    "rate_limit_exceeded": "openai_rate_limited",
    "insufficient_quota": "openai_quota",
    "context_length_exceeded": "context_window",
    "server_error": "openai_unavailable",
    "overloaded": "openai_unavailable",
    "internal_error": "openai_unavailable",
}
# response.incomplete `incomplete_details.reason` → kind.
INCOMPLETE = {
    "max_output_tokens": "length_limit",
    "max_tokens": "length_limit",  # the spelling of OpenAI's documented example
    "content_filter": "content_filter",
}
# Kinds worth asking once more when the response showed nothing yet: the service may be back.
RETRYABLE = frozenset({"openai_unavailable", "openai_rate_limited", "stream_cut", "model_failed"})


def stream_failure_kind(code: str | None) -> str:
    return STREAM_FAILURES.get(code or "", "model_failed")


def incomplete_kind(reason: str | None) -> str:
    return INCOMPLETE.get(reason or "", "incomplete")


def to_turn_error(exc: openai.OpenAIError) -> TurnError:
    """Narrow an SDK error to a kind; the detail (never shown to users) keeps the status."""
    detail = f"{type(exc).__name__}: {getattr(exc, 'status_code', '')} {getattr(exc, 'code', '') or ''}".strip()
    code = getattr(exc, "code", None)
    if isinstance(exc, openai.APITimeoutError):
        return TurnError("timeout", detail)
    if code in ("insufficient_quota", "context_length_exceeded"):
        return TurnError(STREAM_FAILURES[code], detail)
    if isinstance(exc, openai.RateLimitError):
        return TurnError("openai_rate_limited", detail)
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return TurnError("openai_auth", detail)
    if isinstance(exc, (openai.InternalServerError, openai.APIConnectionError)):
        return TurnError("openai_unavailable", detail)
    if isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
        return TurnError("openai_unavailable", detail)
    if isinstance(exc, openai.APIStatusError):
        return TurnError("openai_rejected", detail)
    return TurnError("unexpected", detail)


def is_missing_vector_store(exc: BaseException) -> bool:
    """A channel's vector store expired (after days unused) or was deleted at OpenAI."""
    if not isinstance(exc, (openai.NotFoundError, openai.BadRequestError)):
        return False
    return "vector store" in (getattr(exc, "message", "") or "").lower().replace("_", " ")


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The HTTP client's transport errors (httpx2 under the pinned openai, httpx under older
    ones): a stream the peer cuts or resets raises them while it is read, outside the SDK's
    own exception classes."""
    errors = []
    for name in ("httpx2", "httpx"):
        try:
            errors.append(importlib.import_module(name).TransportError)
        except ImportError:
            continue
    return tuple(errors)


# A dropped, reset or garbled stream, as it surfaces while the body is read.
STREAM_BROKEN: tuple[type[BaseException], ...] = (*_transport_errors(), OSError, ValueError)
