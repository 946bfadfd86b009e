"""A modal form generated from a tool's JSON schema (for a slash command given no text)."""

from __future__ import annotations

import json
from typing import Any

from assist_bot.tools import Tool

CALLBACK_ID = "assist_tool_form"


def _kind(prop: dict[str, Any]) -> tuple[str, list[Any] | None, bool]:
    """(json type, enum values, nullable) of a strict-schema property."""
    options = prop.get("anyOf") or [prop]
    nullable = any(option.get("type") == "null" for option in options)
    main = next((option for option in options if option.get("type") != "null"), prop)
    kind = main.get("type", "string")
    if isinstance(kind, list):
        nullable = nullable or "null" in kind
        kind = next((k for k in kind if k != "null"), "string")
    return kind, main.get("enum"), nullable


def modal(tool: Tool, *, channel: str) -> dict[str, Any]:
    schema = tool.schema()
    defaults = tool.defaults
    blocks = [_input(name, prop, defaults.get(name)) for name, prop in schema.get("properties", {}).items()]
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "private_metadata": json.dumps({"tool": tool.name, "channel": channel}),
        "title": {"type": "plain_text", "text": tool.name[:24]},
        "submit": {"type": "plain_text", "text": "Run"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks or [{"type": "section", "text": {"type": "mrkdwn", "text": "This tool takes no arguments."}}],
    }


def _option(value: Any) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": str(value)}, "value": json.dumps(value)}


def _input(name: str, prop: dict[str, Any], default: Any = None) -> dict[str, Any]:
    """One input; a parameter with a default is optional (left empty, the default applies)
    and shows its default already filled in."""
    kind, enum, nullable = _kind(prop)
    if enum:
        element: dict[str, Any] = {
            "type": "static_select",
            "action_id": "value",
            "options": [_option(v) for v in enum],
        }
        if default in enum:
            element["initial_option"] = _option(default)
    else:
        element = {"type": "plain_text_input", "action_id": "value", "multiline": name in {"body", "text", "message"}}
        if default is not None:
            element["initial_value"] = default if isinstance(default, str) else json.dumps(default)
    block: dict[str, Any] = {
        "type": "input",
        "block_id": name,
        "optional": nullable,
        "label": {"type": "plain_text", "text": name.replace("_", " ")},
        "element": element,
    }
    if prop.get("description"):
        block["hint"] = {"type": "plain_text", "text": prop["description"][:150]}
    return block


def submitted_arguments(tool: Tool, values: dict[str, Any]) -> dict[str, Any]:
    """The view's state values → arguments (strings stay strings; pydantic validates).
    A field left empty is left out: its default applies, or validation says it is required."""
    arguments: dict[str, Any] = {}
    for name, prop in tool.schema().get("properties", {}).items():
        element = (values.get(name) or {}).get("value") or {}
        kind, enum, _ = _kind(prop)
        if enum:
            selected = element.get("selected_option")
            value = json.loads(selected["value"]) if selected else None
        else:
            value = _coerce(element.get("value"), kind)
        if value is not None:
            arguments[name] = value
    return arguments


def _coerce(raw: str | None, kind: str) -> Any:
    if raw is None or raw == "":
        return None
    if kind in {"integer", "number", "boolean", "array", "object"}:
        try:
            return json.loads(raw)
        except ValueError:
            return raw  # let validation explain what is wrong
    return raw
