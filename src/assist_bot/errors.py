"""One root exception with narrow subclasses that carry data.

A broad `except` lives only where a turn ends (it tells the user in the thread)
and in the CLI (it prints one line).
"""

from __future__ import annotations


class AssistBotError(Exception):
    """Root of every error assist-bot raises on purpose."""


class SettingsError(AssistBotError):
    """A setting is missing or invalid; the message names the variable."""


class AssistantsFileError(AssistBotError):
    """The assistants file cannot be read or does not validate."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"assistants file {path}: {reason}")
        self.path = path
        self.reason = reason


class TurnError(AssistBotError):
    """A turn failed in a way the user should hear about.

    `kind` picks the user-facing text (see `texts.py`); `detail` is for logs only.
    """

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail
