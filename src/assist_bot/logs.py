"""Logging set-up, with a filter that keeps secrets out of every log line.

Two formats (ASSIST_BOT_LOG_FORMAT): text, or one JSON object per line. Both carry the
ids of what is being handled — team, channel, thread, turn — from context variables
bound where an event arrives and where a turn starts, so every line of one turn can be
found. What people wrote never appears unless ASSIST_BOT_LOG_CONTENT=true: code passes
it only as `extra={"content": …}`, and the formatter drops it unless told otherwise.
"""

from __future__ import annotations

import json
import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime

# Slack tokens (xoxb-, xapp-, xoxp-…) and OpenAI keys (sk-…), wherever they appear.
_SECRET = re.compile(r"\b(xox[abprse]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|sk-[A-Za-z0-9_-]{4,})")

IDS = ("team", "channel", "thread", "turn")
_ids: ContextVar[dict[str, str] | None] = ContextVar("assist_bot_log_ids", default=None)


def bind(**ids: str) -> None:
    """Add ids (team, channel, thread, turn) to every later log line of this task and
    of the tasks it starts."""
    _ids.set({**(_ids.get() or {}), **{k: v for k, v in ids.items() if v}})


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET.sub(lambda m: m.group(0)[:5] + "…[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class RedactingFormatter(logging.Formatter):
    """Redacts the whole formatted line, tracebacks included (a filter sees only the message).
    Adds the bound ids, and the content when allowed."""

    def __init__(self, fmt: str | None = None, *, content: bool = False) -> None:
        super().__init__(fmt)
        self.content = content

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{k}={v}" for k, v in (_ids.get() or {}).items())
        content = getattr(record, "content", None)
        if self.content and content is not None:
            ids = f"{ids} content={json.dumps(content, ensure_ascii=False)}".strip()
        if ids:
            first, newline, rest = line.partition("\n")
            line = f"{first} [{ids}]{newline}{rest}"
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the bound ids, the
    exception if any, and `content` only when allowed."""

    def __init__(self, *, content: bool = False) -> None:
        super().__init__()
        self.content = content

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **(_ids.get() or {}),
        }
        content = getattr(record, "content", None)
        if self.content and content is not None:
            out["content"] = content
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(out, ensure_ascii=False, default=str))


def redact(text: str) -> str:
    return _SECRET.sub(lambda m: m.group(0)[:5] + "…[redacted]", text)


def setup_logging(level: str = "INFO", *, log_format: str = "text", content: bool = False) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter(content=content))
    else:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", content=content))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The SDKs log request bodies at DEBUG; keep them at INFO even then.
    for noisy in ("slack_sdk", "slack_bolt", "openai", "httpx", "httpx2", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLevelName(level)))
