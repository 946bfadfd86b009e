"""Building the registry: built-ins, ASSIST_BOT_TOOL_MODULES, then installed entry points.

Tools are found where they live — attached to the functions of the modules named —
so nothing depends on what was imported before, or in which order."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import types
from importlib import metadata
from typing import Any

from assist_bot.settings import Settings
from assist_bot.tools.errors import ToolDefinitionError, ToolLoadError
from assist_bot.tools.registry import Tool, ToolRegistry, make_tool, tool_of
from assist_bot.tools.settings import load_tool_settings, secret_values

log = logging.getLogger(__name__)

BUILTIN_MODULES = ("assist_bot.tools.builtin.email", "assist_bot.tools.builtin.weather")
ENTRY_POINT_GROUP = "assist_bot.tools"


def load_registry(settings: Settings) -> ToolRegistry:
    """Every tool this process offers; a module that cannot be imported, or a tool whose
    settings are invalid, stops start-up. A tool that is not `enabled` is left out."""
    registry = ToolRegistry()
    seen: set[int] = set()
    found = [tools_of_module(_import(module)) for module in [*BUILTIN_MODULES, *settings.tool_module_names]]
    found += [_tools_of_entry_point(ep) for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)]
    for tools in found:
        for each in tools:
            # The same module may be named twice (setting and entry point): load it once.
            if id(each) in seen:
                continue
            seen.add(id(each))
            ready = prepare(each, settings)
            if ready is not None:
                registry.register(ready)
    log.info("tools loaded: %s", ", ".join(registry.names()) or "none")
    return registry


def tools_of_module(module: types.ModuleType) -> list[Tool]:
    """The tools a module (or package) defines or re-exports from its own submodules.

    A tool merely imported from elsewhere belongs to its own module, so naming both
    modules does not double it."""
    name = module.__name__
    found: dict[int, Tool] = {}
    for value in list(vars(module).values()):
        each = tool_of(value)
        if each is not None and (each.module == name or each.module.startswith(name + ".")):
            found.setdefault(id(each), each)
    return list(found.values())


def prepare(each: Tool, settings: Settings) -> Tool | None:
    """The tool with its own settings loaded and the process's defaults applied."""
    config = None
    if each.settings_model is not None:
        config = load_tool_settings(each.settings_model, tool=each.name, module=each.module)
    if each.enabled is not None and not each.enabled(config):
        log.info("tool %s is not configured here, so it is not offered", each.name)
        return None
    # The operator's word on self-approval, when the tool's settings offer one (SMTP_SELF_APPROVAL).
    own_rule = getattr(config, "self_approval", None)
    return dataclasses.replace(
        each,
        config=config,
        self_approval=own_rule if isinstance(own_rule, bool) else each.self_approval,
        timeout=each.timeout or settings.tool_timeout,
        secrets=(*secret_values(config), *_bot_secrets(settings)),
    )


def _bot_secrets(settings: Settings) -> tuple[str, ...]:
    # Tools cannot read these through their context; scrubbing them still guards a tool
    # that echoes what it found elsewhere (the process environment).
    values = (
        settings.slack_bot_token,
        settings.openai_api_key,
        settings.slack_app_token,
        settings.slack_signing_secret,
    )
    return tuple(v.get_secret_value() for v in values if v is not None and v.get_secret_value())


def _import(module: str) -> types.ModuleType:
    try:
        return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any import failure is reported the same way
        raise ToolLoadError(module, f"{type(exc).__name__}: {exc}") from exc


def _tools_of_entry_point(entry_point: metadata.EntryPoint) -> list[Tool]:
    try:
        loaded: Any = entry_point.load()
    except Exception as exc:  # noqa: BLE001
        raise ToolLoadError(entry_point.value, f"{type(exc).__name__}: {exc}") from exc
    if isinstance(loaded, types.ModuleType):
        return tools_of_module(loaded)
    declared = tool_of(loaded)
    if declared is not None:
        return [declared]
    if callable(loaded):
        # A plain function becomes a tool with defaults.
        try:
            return [make_tool(loaded)]
        except ToolDefinitionError as exc:
            raise ToolLoadError(entry_point.value, str(exc)) from None
    raise ToolLoadError(entry_point.value, "an entry point must name a module, a tool or a function")
