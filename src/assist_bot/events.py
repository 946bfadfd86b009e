"""Turn events: what the engine yields and the reply sink renders.

Small dataclasses with a literal `type`, so the Slack side can render a turn
without knowing OpenAI's stream format, and the engine can be driven without Slack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    type: Literal["text_delta"] = "text_delta"


@dataclass(frozen=True, slots=True)
class ToolActivity:
    """A tool started (`active=True`) or finished working."""

    # reasoning | file_search | code_interpreter | web_search | image_generation | mcp | mcp_list_tools | function
    kind: str
    name: str = ""
    active: bool = True
    type: Literal["tool_activity"] = "tool_activity"


@dataclass(frozen=True, slots=True)
class Citation:
    """A source the answer cites: a knowledge file (`link`: its Slack permalink when known)
    or a web page found by web search (`filename`: the page title, `link`: its URL)."""

    filename: str
    link: str = ""
    kind: Literal["file", "web"] = "file"


@dataclass(frozen=True, slots=True)
class FileOutput:
    """A file the model made (a chart, a result) to hand to the people in the thread."""

    name: str
    content: bytes
    # Where the answer's text links to it ("sandbox:/mnt/data/chart.png"): the Slack side points
    # such links at the uploaded file instead.
    sandbox_path: str = ""
    type: Literal["file_output"] = "file_output"


@dataclass(frozen=True, slots=True)
class Done:
    """The response completed; `text` is the whole answer as the model wrote it."""

    text: str
    response_id: str = ""
    citations: tuple[Citation, ...] = ()
    type: Literal["done"] = "done"


@dataclass(frozen=True, slots=True)
class Failed:
    """The model gave up mid-answer; `kind` picks the user-facing text."""

    kind: str
    detail: str = ""
    type: Literal["failed"] = "failed"


@dataclass(frozen=True, slots=True)
class UsageReport:
    """What one response used (from its final `usage` and output items); the dispatcher
    records it, the reply never shows it."""

    model: str
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    code_interpreter: int = 0  # sessions (containers)
    file_search: int = 0
    web_search: int = 0
    containers: tuple[str, ...] = ()
    type: Literal["usage"] = "usage"


@dataclass(frozen=True, slots=True)
class StateChange:
    """What the store must keep of this turn for the thread's next one; the dispatcher
    hands the turn's last StateChange to end_turn (each one supersedes the earlier).

    `server_state`: a conversation the turn created, or (response_chain) the turn's last
    response id. `history`/`history_drop` (local): items to append to the thread's
    history, and how many of its oldest items to drop to stay within the token budget."""

    server_state: str = ""
    history: tuple[dict, ...] = ()
    history_drop: int = 0
    type: Literal["state_change"] = "state_change"


TurnEvent = TextDelta | ToolActivity | FileOutput | StateChange | UsageReport | Done | Failed


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A side-effect tool call waiting for a person's yes or no."""

    tool: str
    description: str
    arguments: dict
    requester: str  # the Slack user whose message led to the call (the last speaker)
    # Everyone whose message is in the turn: the approver must be allowed for each of them.
    requesters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    approved: bool
    by: str = ""  # who decided; empty when nobody answered in time
    timed_out: bool = False
