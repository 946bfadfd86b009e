"""What a person said, normalised away from Slack's payloads.

The Slack side builds these; the dispatcher queues them (they round-trip
through the store as plain dicts); the engine turns them into model input.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from assist_bot.store import ChannelKey, ThreadKey


@dataclass(frozen=True, slots=True)
class Inbound:
    team: str
    channel: str
    thread_ts: str  # the thread the reply goes to (the message's own ts for a new thread)
    ts: str  # the message itself
    user: str
    user_name: str
    text: str
    is_dm: bool = False
    images: tuple[str, ...] = ()  # OpenAI file ids of images shared with the message
    # What the person had in view, for the model, not said by them: the channel they were
    # looking at (agent view), or the thread a shortcut asked about. Framed by the Slack side.
    context: str = ""

    @property
    def thread(self) -> ThreadKey:
        return ThreadKey(self.team, self.channel, self.thread_ts)

    @property
    def channel_key(self) -> ChannelKey:
        return ChannelKey(self.team, self.channel)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Inbound:
        fields = cls.__dataclass_fields__
        values = {k: v for k, v in data.items() if k in fields}
        values["images"] = tuple(values.get("images") or ())  # JSON turns tuples into lists
        return cls(**values)
