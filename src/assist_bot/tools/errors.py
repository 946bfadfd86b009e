"""Errors of the tool layer, all under the project's root `AssistBotError`."""

from __future__ import annotations

from assist_bot.errors import AssistBotError


class ToolError(AssistBotError):
    """Root of the tool layer's errors."""


class ToolDefinitionError(ToolError):
    """A function cannot be a tool (bad name, untyped parameter, schema strict mode cannot express)."""


class DuplicateToolError(ToolDefinitionError):
    """Two tools share a name or a slash command."""


class ToolArgumentsError(ToolError):
    """The model's arguments do not fit the schema; the message is plain words for the model."""


class ToolLoadError(ToolError):
    """A tool module (or entry point) could not be imported; names it and says why."""

    def __init__(self, module: str, reason: str) -> None:
        super().__init__(f"tool module {module!r} could not be loaded: {reason}")
        self.module = module
        self.reason = reason


class ToolFailure(ToolError):
    """A tool's expected failure ("no such city"); its message alone is shown to the model."""
