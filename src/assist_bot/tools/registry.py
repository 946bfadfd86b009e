"""Function tools: the `@tool` decorator, `Tool`, and the `ToolRegistry`.

A tool is a typed Python function. Its schema comes from the signature and docstring
(see `schema.py`); a parameter annotated `ToolContext` is injected at call time and
hidden from the model. Nothing here knows Slack or OpenAI's SDKs: the engine turns
`openai_tool()` into a request and feeds the model's call back through `invoke()`.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

import aiohttp
import pydantic

from assist_bot.settings import Settings
from assist_bot.tools.errors import (
    DuplicateToolError,
    ToolArgumentsError,
    ToolDefinitionError,
    ToolFailure,
)
from assist_bot.tools.output import as_text, scrub
from assist_bot.tools.schema import Signature, build_params_model, describe_errors, parse_docstring, strict_schema

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# OpenAI's rule for function names; Slack's for command names (32 characters, lowercase).
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_COMMAND = re.compile(r"^/[a-z0-9_-]{1,31}$")


@dataclass(frozen=True)
class ToolContext:
    """What a tool may use besides its arguments; injected, never seen by the model."""

    settings: Settings
    http: aiohttp.ClientSession
    team: str
    channel: str
    user: str
    thread_ts: str


@dataclass(frozen=True)
class ToolResult:
    ok: bool
    output: str


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    fn: Callable[..., Any] = field(repr=False)
    signature: Signature = field(repr=False, compare=False)
    parameters: dict[str, Any] = field(repr=False, compare=False)
    module: str = ""
    side_effects: bool = False
    timeout: float | None = None
    slash_command: str = ""
    allow_users: frozenset[str] | None = None
    allow_channels: frozenset[str] | None = None

    @property
    def params_model(self) -> type[pydantic.BaseModel]:
        return self.signature.model

    def schema(self) -> dict[str, Any]:
        """The strict JSON schema of the arguments (a copy: callers may change it)."""
        return copy.deepcopy(self.parameters)

    def openai_tool(self) -> dict[str, Any]:
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.schema(),
            "strict": True,
        }

    def validate(self, arguments: str | dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments for the function, or ToolArgumentsError in plain words."""
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments or "{}")
            except ValueError:
                raise ToolArgumentsError("arguments are not valid JSON") from None
        if not isinstance(arguments, dict):
            raise ToolArgumentsError("arguments must be a JSON object")
        try:
            model = self.signature.model.model_validate(arguments)
        except pydantic.ValidationError as exc:
            raise ToolArgumentsError(describe_errors(exc)) from None
        kwargs = {param: getattr(model, field_name) for field_name, param in self.signature.fields.items()}
        for param, default in self.signature.defaults.items():
            if kwargs[param] is None:
                kwargs[param] = default
        return kwargs

    async def invoke(self, arguments: str | dict[str, Any], ctx: ToolContext) -> ToolResult:
        """Run the tool for the model; every failure comes back as text, never raised."""
        try:
            kwargs = self.validate(arguments)
        except ToolArgumentsError as exc:
            return ToolResult(False, f"Error: invalid arguments: {exc}")
        if self.signature.context_param:
            kwargs[self.signature.context_param] = ctx
        seconds = self.timeout or ctx.settings.tool_timeout
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                result = await self._call(kwargs)
        except TimeoutError as exc:
            # A TimeoutError raised by the tool itself is a failure, not our deadline.
            if deadline.expired():
                return ToolResult(False, f"Error: {self.name} did not finish within {seconds:g} seconds")
            return self._failed(exc, ctx)
        except Exception as exc:  # noqa: BLE001 - the model hears about it; the turn goes on
            return self._failed(exc, ctx)
        return ToolResult(True, as_text(result))

    async def _call(self, kwargs: dict[str, Any]) -> Any:
        if inspect.iscoroutinefunction(self.fn):
            return await self.fn(**kwargs)
        # A sync tool runs in a thread so it cannot block the event loop; on time-out the
        # thread runs on to its end (threads cannot be cancelled), its result ignored.
        result = await asyncio.to_thread(functools.partial(self.fn, **kwargs))
        # A callable object or partial hiding a coroutine function hands back a coroutine.
        return await result if inspect.isawaitable(result) else result

    def _failed(self, exc: Exception, ctx: ToolContext) -> ToolResult:
        if isinstance(exc, ToolFailure):
            message = str(exc)
        else:
            message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        message = scrub(message, ctx.settings)
        log.warning("tool %s failed: %s", self.name, message)
        return ToolResult(False, f"Error: {message}")

    def allowed(self, user: str, channel: str, admins: frozenset[str]) -> bool:
        if user in admins:
            return True
        users_ok = self.allow_users is None or user in self.allow_users
        channels_ok = self.allow_channels is None or channel in self.allow_channels
        return users_ok and channels_ok


# --- declaring -----------------------------------------------------------------------

_declared: list[Tool] = []


def declared_tools() -> tuple[Tool, ...]:
    """Every tool declared so far by an imported module, in import order."""
    return tuple(_declared)


@overload
def tool(fn: F, /) -> F: ...
@overload
def tool(
    *,
    name: str | None = None,
    side_effects: bool = False,
    timeout: float | None = None,
    slash_command: str | None = None,
    allow_users: Iterable[str] | None = None,
    allow_channels: Iterable[str] | None = None,
) -> Callable[[F], F]: ...


def tool(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Declare a function as a tool (`@tool` or `@tool(side_effects=True, …)`); returns it unchanged."""

    def declare(function: F) -> F:
        declared = make_tool(function, **options)
        # Re-importing a module (reload) replaces its tools instead of doubling them.
        _declared[:] = [t for t in _declared if (t.module, t.name) != (declared.module, declared.name)]
        _declared.append(declared)
        return function

    return declare(fn) if fn is not None else declare


def make_tool(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    side_effects: bool = False,
    timeout: float | None = None,
    slash_command: str | None = None,
    allow_users: Iterable[str] | None = None,
    allow_channels: Iterable[str] | None = None,
) -> Tool:
    """Build a `Tool` from a function without declaring it."""
    name = name or fn.__name__
    if not _NAME.match(name):
        raise ToolDefinitionError(f"tool name {name!r} must be 1-64 letters, digits, '_' or '-'")
    command = slash_command or "/" + name.replace("_", "-").lower()
    if not _COMMAND.match(command):
        raise ToolDefinitionError(f"tool {name}: slash command {command!r} must look like /lowercase-name")
    if timeout is not None and timeout <= 0:
        raise ToolDefinitionError(f"tool {name}: timeout must be positive")
    signature = build_params_model(fn, name=name, context_type=ToolContext)
    try:
        parameters = strict_schema(signature.model)
    except ToolDefinitionError as exc:
        raise ToolDefinitionError(f"tool {name}: {exc}") from None
    return Tool(
        name=name,
        description=parse_docstring(fn.__doc__).description,
        fn=fn,
        signature=signature,
        parameters=parameters,
        module=getattr(fn, "__module__", "") or "",
        side_effects=side_effects,
        timeout=timeout,
        slash_command=command,
        allow_users=None if allow_users is None else frozenset(allow_users),
        allow_channels=None if allow_channels is None else frozenset(allow_channels),
    )


# --- the registry ----------------------------------------------------------------------


class ToolRegistry:
    """The tools this process offers, by name and by slash command."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for each in tools:
            self.register(each)

    def register(self, tool: Tool) -> None:
        if tool.name in self._tools:
            other = self._tools[tool.name]
            raise DuplicateToolError(f"tool name {tool.name!r} is declared twice: in {other.module} and {tool.module}")
        clash = self.by_slash_command(tool.slash_command)
        if clash is not None:
            raise DuplicateToolError(
                f"slash command {tool.slash_command} is used by both {clash.name} ({clash.module}) "
                f"and {tool.name} ({tool.module})"
            )
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def all(self) -> list[Tool]:
        return list(self._tools.values())

    def for_turn(self, names: Iterable[str], *, user: str, channel: str, admins: frozenset[str]) -> list[Tool]:
        """The listed tools this user may use here; unknown names are skipped (an old assistants file)."""
        picked = (self._tools.get(name) for name in dict.fromkeys(names))
        return [t for t in picked if t is not None and t.allowed(user, channel, admins)]

    def by_slash_command(self, command: str) -> Tool | None:
        wanted = "/" + command.strip().lstrip("/").lower()
        return next((t for t in self._tools.values() if t.slash_command == wanted), None)
