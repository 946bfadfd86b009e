"""Function tools: typed Python functions the model may call.

Declare one with `@tool` in any module; `load_registry(settings)` imports the
built-ins, the modules in ASSIST_BOT_TOOL_MODULES and the `assist_bot.tools`
entry points, and registers the tools they declare.
"""

from assist_bot.tools.errors import (
    DuplicateToolError,
    ToolArgumentsError,
    ToolDefinitionError,
    ToolError,
    ToolFailure,
    ToolLoadError,
)
from assist_bot.tools.registry import Tool, ToolContext, ToolRegistry, ToolResult, declared_tools, make_tool, tool

__all__ = [
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
    "declared_tools",
    "make_tool",
    "tool",
]
