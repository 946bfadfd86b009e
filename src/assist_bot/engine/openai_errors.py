"""Map OpenAI SDK exceptions onto TurnError kinds (user-facing texts live in texts.py)."""

from __future__ import annotations

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


def to_turn_error(exc: openai.OpenAIError) -> TurnError:
    """Narrow an SDK error to a kind; the detail (never shown to users) keeps the status."""
    detail = f"{type(exc).__name__}: {getattr(exc, 'status_code', '')} {getattr(exc, 'code', '') or ''}".strip()
    if isinstance(exc, openai.APITimeoutError):
        return TurnError("timeout", detail)
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
