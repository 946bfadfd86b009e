"""What the Slack surfaces need, passed explicitly to each `register(app, deps)`."""

from __future__ import annotations

from dataclasses import dataclass

from assist_bot.dispatch import Dispatcher
from assist_bot.slack.people import People


@dataclass(frozen=True, slots=True)
class SurfaceDeps:
    dispatcher: Dispatcher
    people: People
