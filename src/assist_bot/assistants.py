"""Assistants: named configurations (model, instructions, tools, sampling),
kept in a versioned TOML file. Each channel picks one by name.

    version = 1
    default = "general"

    [assistants.general]
    model = "gpt-5.4-mini"
    instructions = "You are a helpful assistant in a Slack workspace."
    temperature = 0.3
    tools = []
    context = "truncate"   # long threads: "truncate" (drop the oldest turns), "compact", or "off"

With no file, a built-in `default` assistant on ASSIST_BOT_MODEL works.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from assist_bot.errors import AssistantsFileError
from assist_bot.settings import https_unless_loopback

SUPPORTED_VERSIONS = {1}
ContextMode = Literal["truncate", "compact", "off"]

# What the built-in assistant may use when no assistants file is configured.
BUILTIN_TOOLS = ("get_weather", "send_email")

DEFAULT_INSTRUCTIONS = (
    "You are a helpful assistant in a Slack workspace. Messages start with the speaker's "
    "name in square brackets, because several people may talk in one thread. "
    "Answer concisely; use Markdown for structure and code."
)


class Backend(BaseModel):
    """Where an assistant's model lives when not on the bot's default server, and what
    that server can do. Every field is optional: the defaults are the bot's settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = None  # a Responses API server, e.g. http://localhost:11434/v1 (Ollama)
    api_key_env: str | None = None  # the environment variable holding that server's API key
    azure_endpoint: str | None = None  # an Azure OpenAI resource (with api_version)
    api_version: str | None = None
    state: Literal["auto", "conversation", "response_chain", "local"] | None = None  # over ASSIST_BOT_STATE
    hosted_tools: bool | None = None  # file search, code interpreter, web search, image generation
    # The budget of a local history (and its compaction threshold, unless the assistant sets
    # compact_threshold); the assistant's `context` decides what happens past it.
    history_tokens: int | None = Field(default=None, gt=0)

    @property
    def server(self) -> str:
        """Which server and account this is, in words that hold no secret: "" for the bot's
        own (OPENAI_BASE_URL with OPENAI_API_KEY); else the URL without credentials or query,
        and the name of the key's variable. The ledger keeps it with what the bot makes there
        (a conversation, a container), so that clean-up deletes it at the same server."""
        url = self.azure_endpoint or self.base_url
        if url is None and self.api_key_env is None:
            return ""
        words = []
        if url is not None:
            parts = urlsplit(url)
            port = f":{parts.port}" if parts.port else ""
            words.append(f"{parts.scheme}://{parts.hostname}{port}{parts.path.rstrip('/')}")
        if self.api_key_env:
            words.append(f"key={self.api_key_env}")
        return " ".join(words)

    @model_validator(mode="after")
    def _https_when_a_key_travels(self) -> Backend:
        """With api_key_env the key goes with every call: https, or http only to this machine.
        Without one no secret travels, so a model server on the local network may be plain http."""
        for field in ("base_url", "azure_endpoint"):
            url = getattr(self, field)
            if url is None:
                continue
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{field} must be a URL such as https://llm.example.com/v1")
            if self.api_key_env:
                try:
                    https_unless_loopback(url, example="https://llm.example.com/v1")
                except ValueError as exc:
                    raise ValueError(f"{field} {exc}: api_key_env sends a key with every call") from None
        return self


class SuggestedPrompt(BaseModel):
    """A prompt Slack offers in the agent view: a short title, and the message it sends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1, max_length=75)
    message: str = Field(min_length=1, max_length=2000)


# Shown when an assistant names none (Slack shows at most four).
DEFAULT_SUGGESTED_PROMPTS = (
    SuggestedPrompt(title="What can you do?", message="What can you help me with, and which tools can you use?"),
    SuggestedPrompt(title="Explain this channel", message="What is the channel I am looking at about?"),
    SuggestedPrompt(title="Draft a message", message="Help me draft a short, friendly message."),
)


class Assistant(BaseModel):
    """One named configuration; what a response is created with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    model: str
    instructions: str = DEFAULT_INSTRUCTIONS
    tools: tuple[str, ...] = ()
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_output_tokens: int | None = Field(default=None, gt=0)
    reasoning_effort: str | None = None
    description: str = ""
    # File extension → "knowledge" | "code" | "image", over the defaults of filetypes.py.
    file_routes: dict[str, str] = Field(default_factory=dict)
    backend: Backend = Backend()
    # How a thread outgrows the model's context window, in every state mode (engine/state.py
    # context_plan): its oldest items are dropped (truncation "auto"; in `local` mode the bot
    # drops whole turns past the history budget), compacted server-side (context_management),
    # or nothing is dropped and a full thread fails ("off").
    context: ContextMode = "truncate"
    compact_threshold: int | None = Field(default=None, gt=0)
    suggested_prompts: tuple[SuggestedPrompt, ...] = DEFAULT_SUGGESTED_PROMPTS
    # Recent messages of the channel the person is viewing that the model may read
    # (agent view); 0: only its name and topic.
    viewed_channel_messages: int = Field(default=0, ge=0, le=50)

    def context_request(self) -> dict[str, Any]:
        """The Responses API parameters for `context`."""
        if self.context == "truncate":
            return {"truncation": "auto"}
        if self.context == "compact":
            entry: dict[str, Any] = {"type": "compaction"}
            if self.compact_threshold:
                entry["compact_threshold"] = self.compact_threshold
            return {"context_management": [entry]}
        return {"truncation": "disabled"}


class _AssistantEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    instructions: str = DEFAULT_INSTRUCTIONS
    tools: list[str] = []
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_output_tokens: int | None = Field(default=None, gt=0)
    reasoning_effort: str | None = None
    description: str = ""
    file_routes: dict[str, Literal["knowledge", "code", "image", "none"]] = {}
    backend: Backend = Backend()
    context: ContextMode = "truncate"
    compact_threshold: int | None = Field(default=None, gt=0)
    suggested_prompts: list[SuggestedPrompt] = Field(default=list(DEFAULT_SUGGESTED_PROMPTS), max_length=4)
    viewed_channel_messages: int = Field(default=0, ge=0, le=50)


class _AssistantsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    default: str
    assistants: dict[str, _AssistantEntry]

    @model_validator(mode="after")
    def _check(self) -> _AssistantsFile:
        if self.version not in SUPPORTED_VERSIONS:
            raise ValueError(f"version {self.version} is not supported (supported: {sorted(SUPPORTED_VERSIONS)})")
        if self.default not in self.assistants:
            raise ValueError(f"default assistant {self.default!r} is not defined under [assistants]")
        return self


class Assistants:
    """The catalogue of assistants, with one default."""

    def __init__(self, assistants: dict[str, Assistant], default: str) -> None:
        self._by_name = dict(assistants)
        self.default_name = default

    @classmethod
    def builtin(cls, *, model: str) -> Assistants:
        return cls({"default": Assistant(name="default", model=model, tools=BUILTIN_TOOLS)}, "default")

    @classmethod
    def load(cls, path: Path | None, *, model: str) -> Assistants:
        """Read the file, or the built-in default when no file is configured.

        `model` (ASSIST_BOT_MODEL) fills in assistants that name no model.
        """
        if path is None:
            return cls.builtin(model=model)
        try:
            raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise AssistantsFileError(str(path), str(exc)) from None
        try:
            parsed = _AssistantsFile.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            reason = str(first["msg"]).removeprefix("Value error, ")
            raise AssistantsFileError(str(path), f"{where}: {reason}" if where else reason) from None
        assistants = {
            name: Assistant(
                name=name,
                **{
                    **entry.model_dump(),
                    "model": entry.model or model,
                    "tools": tuple(entry.tools),
                    "suggested_prompts": tuple(entry.suggested_prompts),
                },
            )
            for name, entry in parsed.assistants.items()
        }
        return cls(assistants, parsed.default)

    @property
    def default(self) -> Assistant:
        return self._by_name[self.default_name]

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def get(self, name: str | None) -> Assistant:
        """The named assistant, or the default when the name is unknown or None
        (a channel may still name an assistant that a newer file removed)."""
        if name and name in self._by_name:
            return self._by_name[name]
        return self.default

    def __contains__(self, name: object) -> bool:
        return name in self._by_name
