"""Building the registry: built-ins, ASSIST_BOT_TOOL_MODULES, then installed entry points."""

from __future__ import annotations

import importlib
import logging
import types
from importlib import metadata
from typing import Any

from assist_bot.settings import Settings
from assist_bot.tools.errors import ToolDefinitionError, ToolLoadError
from assist_bot.tools.registry import Tool, ToolRegistry, declared_tools, make_tool

log = logging.getLogger(__name__)

BUILTIN_MODULE = "assist_bot.tools.builtin"
ENTRY_POINT_GROUP = "assist_bot.tools"


def load_registry(settings: Settings) -> ToolRegistry:
    """Every tool this process offers; a module that cannot be imported stops start-up."""
    registry = ToolRegistry()
    for module in [BUILTIN_MODULE, *settings.tool_module_names]:
        _add(registry, _tools_of_module(_import(module)))
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        _add(registry, _tools_of_entry_point(entry_point))
    log.info("tools loaded: %s", ", ".join(registry.names()) or "none")
    return registry


def _import(module: str) -> types.ModuleType:
    try:
        return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any import failure is reported the same way
        raise ToolLoadError(module, f"{type(exc).__name__}: {exc}") from exc


def _tools_of_module(module: types.ModuleType) -> list[Tool]:
    # Tools are tracked by the module that defined them, so a package brings its
    # submodules' tools, and a tool merely imported from elsewhere is not doubled.
    name = module.__name__
    return [t for t in declared_tools() if t.module == name or t.module.startswith(name + ".")]


def _tools_of_entry_point(entry_point: metadata.EntryPoint) -> list[Tool]:
    try:
        loaded: Any = entry_point.load()
    except Exception as exc:  # noqa: BLE001
        raise ToolLoadError(entry_point.value, f"{type(exc).__name__}: {exc}") from exc
    if isinstance(loaded, types.ModuleType):
        return _tools_of_module(loaded)
    if callable(loaded):
        # A decorated function is its declared tool; a plain one becomes a tool with defaults.
        declared = [t for t in declared_tools() if t.fn is loaded]
        try:
            return declared or [make_tool(loaded)]
        except ToolDefinitionError as exc:
            raise ToolLoadError(entry_point.value, str(exc)) from None
    raise ToolLoadError(entry_point.value, "an entry point must name a module or a function")


def _add(registry: ToolRegistry, tools: list[Tool]) -> None:
    for each in tools:
        # The same module may be named twice (setting and entry point): load it once.
        if registry.get(each.name) is not each:
            registry.register(each)
