"""A file on its way from Slack to the model: neutral ground between the Slack
side (which downloads it) and the engine (which hands it to OpenAI)."""

from __future__ import annotations

from dataclasses import dataclass

from assist_bot.errors import AssistBotError


class IntakeError(AssistBotError):
    """A file could not be taken in; `reason` is a sentence a user can read."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Upload:
    name: str
    content: bytes
    mimetype: str
    slack_file_id: str
    uploader: str
    permalink: str = ""
