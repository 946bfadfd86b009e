"""Function tools: typed Python functions the model may call.

Declare one with `@tool` in any module; `load_registry(settings)` imports the
built-ins, the modules in ASSIST_BOT_TOOL_MODULES and the `assist_bot.tools`
entry points, and registers the tools found in them. A tool may declare its own
settings (`@tool(settings=MySettings)`, a `ToolSettings` subclass) and receives
them, and nothing else of the bot's configuration, as `ctx.settings`.
"""

from assist_bot.tools.errors import (
    DuplicateToolError,
    ToolArgumentsError,
    ToolDefinitionError,
    ToolError,
    ToolFailure,
    ToolLoadError,
)
from assist_bot.tools.registry import Caller, Tool, ToolContext, ToolRegistry, ToolResult, make_tool, tool, tool_of
from assist_bot.tools.settings import ToolSettings

__all__ = [
    "Caller",
    "DuplicateToolError",
    "Tool",
    "ToolArgumentsError",
    "ToolContext",
    "ToolDefinitionError",
    "ToolError",
    "ToolFailure",
    "ToolLoadError",
    "ToolRegistry",
    "ToolResult",
    "ToolSettings",
    "make_tool",
    "tool",
    "tool_of",
]
