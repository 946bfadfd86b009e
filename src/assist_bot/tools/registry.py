"""Function tools: the `@tool` decorator, `Tool`, and the `ToolRegistry`.

A tool is a typed Python function. Its schema comes from the signature and docstring
(see `schema.py`); a parameter annotated `ToolContext` is injected at call time and
hidden from the model. `@tool` attaches the `Tool` to the function and keeps no list
of its own: `loading.load_registry` finds tools in the modules it is given. Nothing
here knows Slack or OpenAI's SDKs: the engine turns `openai_tool()` into a request
and feeds the model's call back through `invoke()`.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import inspect
import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast, overload

import aiohttp
import pydantic
import pydantic_core

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
S = TypeVar("S")

# OpenAI's rule for function names; Slack's for command names (32 characters, lowercase).
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_COMMAND = re.compile(r"^/[a-z0-9_-]{1,31}$")
# Where `@tool` leaves the Tool on the function it declares.
_ATTRIBUTE = "__assist_tool__"
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Caller:
    """Who asks, and where: what an `allow_users` / `allow_channels` callable is given."""

    team: str
    channel: str
    user: str


@dataclass(frozen=True)
class ToolContext(Caller, Generic[S]):
    """What a tool may use besides its arguments; injected, never seen by the model.

    The call's own facts and the tool's own settings (`settings`: an instance of the
    model given to `@tool(settings=…)`, else None) — never the bot's credentials."""

    http: aiohttp.ClientSession = field(repr=False, kw_only=True)
    thread_ts: str = field(default="", kw_only=True)
    settings: S | None = field(default=None, repr=False, kw_only=True)


# A fixed set of ids, or a rule evaluated per call; None lets everyone.
Access = frozenset[str] | Callable[[Caller], bool] | None


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
    allow_users: Access = None
    allow_channels: Access = None
    # May the person who asked approve their own call? (side-effect tools only)
    self_approval: bool = True
    # The tool's own pydantic-settings model, and (once loaded) its instance.
    settings_model: type[pydantic.BaseModel] | None = field(default=None, repr=False)
    config: Any = field(default=None, repr=False, compare=False)
    # Given the loaded settings: is the tool usable at all (e.g. email without SMTP is not)?
    enabled: Callable[[Any], bool] | None = field(default=None, repr=False)
    # Values scrubbed from error text (the tool's own secrets); set when loaded.
    secrets: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def params_model(self) -> type[pydantic.BaseModel]:
        return self.signature.model

    @property
    def defaults(self) -> dict[str, Any]:
        """Parameter → the default a null (or a missing value from a person) stands for."""
        return dict(self.signature.defaults)

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

    def as_run(self, arguments: str | dict[str, Any]) -> dict[str, Any]:
        """The arguments exactly as the function will get them (validated, defaults applied,
        in the signature's order), as JSON values: what a consent prompt must show."""
        return cast(dict[str, Any], pydantic_core.to_jsonable_python(self.validate(arguments)))

    async def invoke(
        self,
        arguments: str | dict[str, Any],
        ctx: ToolContext[Any],
        *,
        deadline: Callable[[float], asyncio.Timeout] = asyncio.timeout,
    ) -> ToolResult:
        """Run the tool for the model; every failure comes back as text, never raised.
        `deadline` bounds the run (tests pass one they control)."""
        try:
            kwargs = self.validate(arguments)
        except ToolArgumentsError as exc:
            return ToolResult(False, f"Error: invalid arguments: {exc}")
        if self.signature.context_param:
            # Each tool sees its own settings, whoever built the context.
            kwargs[self.signature.context_param] = dataclasses.replace(ctx, settings=self.config)
        seconds = self.timeout or DEFAULT_TIMEOUT
        bound = deadline(seconds)
        try:
            async with bound:
                result = await self._call(kwargs)
        except TimeoutError as exc:
            # A TimeoutError raised by the tool itself is a failure, not our deadline.
            if bound.expired():
                return ToolResult(False, f"Error: {self.name} did not finish within {seconds:g} seconds")
            return self._failed(exc)
        except Exception as exc:  # noqa: BLE001 - the model hears about it; the turn goes on
            return self._failed(exc)
        return ToolResult(True, as_text(result))

    async def _call(self, kwargs: dict[str, Any]) -> Any:
        if inspect.iscoroutinefunction(self.fn):
            return await self.fn(**kwargs)
        # A sync tool runs in a thread so it cannot block the event loop; on time-out the
        # thread runs on to its end (threads cannot be cancelled), its result ignored.
        result = await asyncio.to_thread(functools.partial(self.fn, **kwargs))
        # A callable object or partial hiding a coroutine function hands back a coroutine.
        return await result if inspect.isawaitable(result) else result

    def _failed(self, exc: Exception) -> ToolResult:
        if isinstance(exc, ToolFailure):
            message = str(exc)
        else:
            message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        message = scrub(message, self.secrets)
        log.warning("tool %s failed: %s", self.name, message)
        return ToolResult(False, f"Error: {message}")

    def allowed(self, caller: Caller, admins: frozenset[str]) -> bool:
        if caller.user in admins:
            return True
        return _permits(self.allow_users, caller, caller.user, self.name) and _permits(
            self.allow_channels, caller, caller.channel, self.name
        )

    def user_permitted(self, caller: Caller, admins: frozenset[str]) -> bool:
        """The user rule alone (for listings that do not know the channel yet)."""
        return caller.user in admins or _permits(self.allow_users, caller, caller.user, self.name)

    def allowed_for_all(self, callers: Iterable[Caller], admins: frozenset[str]) -> bool:
        """Usable only when every person in the turn may use it (no borrowed permissions)."""
        return all(self.allowed(caller, admins) for caller in callers)


def _permits(rule: Access, caller: Caller, key: str, tool: str) -> bool:
    if rule is None:
        return True
    if callable(rule):
        try:
            return bool(rule(caller))
        except Exception:  # a broken rule denies, and says so in the log
            log.exception("the access rule of tool %s failed; access denied", tool)
            return False
    return key in rule


# --- declaring -----------------------------------------------------------------------


def tool_of(obj: Any) -> Tool | None:
    """The Tool that `@tool` attached to `obj` (or `obj` itself when it is one)."""
    if isinstance(obj, Tool):
        return obj
    found = getattr(obj, _ATTRIBUTE, None)
    return found if isinstance(found, Tool) else None


@overload
def tool(fn: F, /) -> F: ...
@overload
def tool(
    *,
    name: str | None = None,
    side_effects: bool = False,
    timeout: float | None = None,
    slash_command: str | None = None,
    allow_users: Iterable[str] | Callable[[Caller], bool] | None = None,
    allow_channels: Iterable[str] | Callable[[Caller], bool] | None = None,
    self_approval: bool = True,
    settings: type[pydantic.BaseModel] | None = None,
    enabled: Callable[[Any], bool] | None = None,
) -> Callable[[F], F]: ...


def tool(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Declare a function as a tool (`@tool` or `@tool(side_effects=True, …)`).

    The function is returned unchanged, with its `Tool` attached (see `tool_of`)."""

    def declare(function: F) -> F:
        declared = make_tool(function, **options)
        try:
            setattr(function, _ATTRIBUTE, declared)
        except (AttributeError, TypeError):
            raise ToolDefinitionError(f"tool {declared.name}: use make_tool() for this kind of callable") from None
        return function

    return declare(fn) if fn is not None else declare


def make_tool(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    side_effects: bool = False,
    timeout: float | None = None,
    slash_command: str | None = None,
    allow_users: Iterable[str] | Callable[[Caller], bool] | None = None,
    allow_channels: Iterable[str] | Callable[[Caller], bool] | None = None,
    self_approval: bool = True,
    settings: type[pydantic.BaseModel] | None = None,
    enabled: Callable[[Any], bool] | None = None,
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
        allow_users=_access(allow_users),
        allow_channels=_access(allow_channels),
        self_approval=self_approval,
        settings_model=settings,
        enabled=enabled,
    )


def _access(rule: Iterable[str] | Callable[[Caller], bool] | None) -> Access:
    if rule is None or callable(rule):
        return rule
    return frozenset(rule)


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

    def for_turn(
        self, names: Iterable[str], *, users: Sequence[str], channel: str, team: str = "", admins: frozenset[str]
    ) -> list[Tool]:
        """The listed tools that every one of `users` may use here (the people whose messages
        make up the turn); unknown names are skipped (an old assistants file)."""
        callers = [Caller(team=team, channel=channel, user=user) for user in dict.fromkeys(users)]
        picked = (self._tools.get(name) for name in dict.fromkeys(names))
        return [t for t in picked if t is not None and callers and t.allowed_for_all(callers, admins)]

    def by_slash_command(self, command: str) -> Tool | None:
        wanted = "/" + command.strip().lstrip("/").lower()
        return next((t for t in self._tools.values() if t.slash_command == wanted), None)
