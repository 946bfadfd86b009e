"""Model retirement: OpenAI publishes each model's `shutdown_date` (GET /v1/models/{id});
an assistant on a model that is about to go should be moved before its answers fail.
Used by `assist-bot check` and, as a log warning, at start."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from datetime import date

import openai

from assist_bot.assistants import Assistants

log = logging.getLogger(__name__)

WARN_DAYS = 60  # how far ahead a shutdown date is worth a warning


def _parse(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def retirement_notices(
    users: Mapping[str, Sequence[str]], shutdown_dates: Mapping[str, str | None], *, today: date
) -> list[str]:
    """One sentence per model (used by the named assistants) that shuts down within WARN_DAYS."""
    notices = []
    for model, names in users.items():
        when = _parse(shutdown_dates.get(model))
        if when is None or (when - today).days > WARN_DAYS:
            continue
        days = (when - today).days
        left = f"in {days} day{'s' if days != 1 else ''}" if days >= 0 else "already"
        notices.append(f"{model} shuts down on {when.isoformat()} ({left}; used by {', '.join(names)})")
    return notices


def models_in_use(assistants: Assistants, *, only: Collection[str] | None = None) -> dict[str, list[str]]:
    """Model → the assistants that use it (of those in `only`, when given)."""
    users: dict[str, list[str]] = {}
    for name in assistants.names():
        if only is None or name in only:
            users.setdefault(assistants.get(name).model, []).append(name)
    return users


async def warn_retiring_models(
    client: openai.AsyncOpenAI,
    assistants: Assistants,
    *,
    only: Collection[str] | None = None,
    today: date | None = None,
) -> None:
    """Log a warning for each model in use that shuts down soon (of the assistants in `only`:
    those whose models live on this client's server). Best effort: the bot runs whether or
    not the lookup works (`assist-bot check` reports failures)."""
    users = models_in_use(assistants, only=only)
    dates: dict[str, str | None] = {}
    for model in users:
        try:
            dates[model] = (await client.models.retrieve(model)).shutdown_date
        except openai.OpenAIError as exc:
            log.debug("could not look up model %s: %s", model, type(exc).__name__)
    for notice in retirement_notices(users, dates, today=today or date.today()):
        log.warning("model retirement: %s — move these assistants to a current model", notice)
