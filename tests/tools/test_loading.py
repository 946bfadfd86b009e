"""Loading tools: built-ins, ASSIST_BOT_TOOL_MODULES, and installed entry points."""

from __future__ import annotations

import sys
import textwrap
import uuid

import pytest

from assist_bot.errors import AssistBotError
from assist_bot.settings import Settings
from assist_bot.tools import DuplicateToolError, ToolLoadError
from assist_bot.tools.loading import ENTRY_POINT_GROUP, load_registry

pytestmark = pytest.mark.timeout(10)

BUILTINS = ["get_weather"]  # send_email only with SMTP_HOST and SMTP_FROM set


@pytest.fixture
def write_module(tmp_path, monkeypatch):
    """Write a module (or package, for dotted names) under a unique prefix onto sys.path."""
    prefix = f"co_tools_{uuid.uuid4().hex[:8]}"
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, source: str) -> str:
        full = f"{prefix}_{name}"
        *packages, leaf = full.split(".")
        folder = tmp_path
        for package in packages:
            folder = folder / package
            folder.mkdir(exist_ok=True)
            (folder / "__init__.py").touch()
        (folder / f"{leaf}.py").write_text(textwrap.dedent(source))
        return full

    yield write
    for name in [m for m in sys.modules if m.startswith(prefix)]:
        del sys.modules[name]


HR_TOOLS = """
    from assist_bot.tools import ToolContext, tool

    @tool(allow_users=["UHR"])
    def leave_balance(employee: str, ctx: ToolContext) -> str:
        '''How many days of leave an employee has left.

        Args:
            employee: The employee's Slack user id.
        '''
        return "12"

    def helper() -> str:
        '''Not decorated: not a tool.'''
        return ""
"""


def settings_from_env(monkeypatch, modules: str) -> Settings:
    monkeypatch.setenv("ASSIST_BOT_TOOL_MODULES", modules)
    return Settings(_env_file=None, SLACK_BOT_TOKEN="xoxb-t", OPENAI_API_KEY="sk-t", SLACK_APP_TOKEN="xapp-t")


def test_builtins_alone(make_settings):
    registry = load_registry(make_settings())
    assert sorted(registry.names()) == sorted(BUILTINS)
    assert registry.by_slash_command("/weather").name == "get_weather"
    assert registry.get("send_email") is None  # no mail server configured


def test_modules_from_the_environment(monkeypatch, write_module):
    hr = write_module("hr", HR_TOOLS)
    # Re-exports a tool declared elsewhere: it must not be registered twice, nor under this module.
    other = write_module(
        "other",
        f"""
        from {hr} import leave_balance
        from assist_bot.tools import tool

        @tool(name="ping", slash_command="/co-ping")
        async def ping() -> str:
            '''Answer pong.'''
            return "pong"
    """,
    )
    registry = load_registry(settings_from_env(monkeypatch, f" {hr} , {other},{hr}"))
    assert sorted(registry.names()) == sorted([*BUILTINS, "leave_balance", "ping"])
    balance = registry.get("leave_balance")
    assert balance.module == hr and balance.allow_users == frozenset({"UHR"})
    assert list(balance.schema()["properties"]) == ["employee"]
    assert registry.by_slash_command("/co-ping").name == "ping"


def test_a_package_brings_its_submodules_tools(monkeypatch, write_module):
    sub = write_module("pkg.hr", HR_TOOLS)
    package = sub.rsplit(".", 1)[0]
    write_module("pkg.__init__", f"from {sub} import leave_balance  # noqa: F401\n")
    registry = load_registry(settings_from_env(monkeypatch, package))
    assert "leave_balance" in registry.names()


def test_failing_module_names_itself(monkeypatch, write_module):
    broken = write_module("broken", "raise RuntimeError('database is down')\n")
    with pytest.raises(ToolLoadError) as caught:
        load_registry(settings_from_env(monkeypatch, broken))
    assert isinstance(caught.value, AssistBotError)
    assert caught.value.module == broken
    assert str(caught.value) == f"tool module {broken!r} could not be loaded: RuntimeError: database is down"


def test_missing_module(monkeypatch):
    with pytest.raises(ToolLoadError, match="'no_such_company_tools' could not be loaded: ModuleNotFoundError"):
        load_registry(settings_from_env(monkeypatch, "no_such_company_tools"))


def test_same_tool_name_in_two_modules(monkeypatch, write_module):
    one = write_module("one", HR_TOOLS)
    two = write_module("two", HR_TOOLS)
    with pytest.raises(DuplicateToolError, match="'leave_balance' is declared twice"):
        load_registry(settings_from_env(monkeypatch, f"{one},{two}"))


def test_entry_points(tmp_path, make_settings, write_module):
    hr = write_module("ep_hr", HR_TOOLS)
    funcs = write_module(
        "ep_funcs",
        """
        from assist_bot.tools import tool

        @tool(timeout=5)
        def decorated(x: int) -> int:
            '''Decorated.'''
            return x

        def plain(word: str) -> str:
            '''A plain function becomes a tool with defaults.'''
            return word

        def not_listed(word: str) -> str:
            '''Not named by any entry point.'''
            return word
    """,
    )
    dist = tmp_path / "company_tools-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: company-tools\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nhr = {hr}\ndecorated = {funcs}:decorated\nplain = {funcs}:plain\n"
    )
    registry = load_registry(make_settings())
    assert sorted(registry.names()) == sorted([*BUILTINS, "leave_balance", "decorated", "plain"])
    assert registry.get("decorated").timeout == 5
    assert registry.get("plain").description == "A plain function becomes a tool with defaults."


def test_no_import_order_state(make_settings, write_module, monkeypatch):
    """A module imported long before, or reloaded, gives the same tools: the decorator
    remembers nothing, so a registry depends only on the modules it is given."""
    import importlib

    hr = write_module("early", HR_TOOLS)
    importlib.reload(importlib.import_module(hr))
    first = load_registry(settings_from_env(monkeypatch, hr))
    again = load_registry(settings_from_env(monkeypatch, hr))
    assert sorted(first.names()) == sorted(again.names()) == sorted([*BUILTINS, "leave_balance"])
    monkeypatch.delenv("ASSIST_BOT_TOOL_MODULES")
    assert load_registry(make_settings()).get("leave_balance") is None  # imported, but not named: not offered


CRM_TOOLS = '''
    from pydantic import SecretStr
    from pydantic_settings import SettingsConfigDict
    from assist_bot.tools import ToolContext, ToolSettings, tool

    class CrmSettings(ToolSettings):
        model_config = SettingsConfigDict(env_prefix="CRM_")
        api_key: SecretStr
        region: str = "eu"

    @tool(settings=CrmSettings)
    def crm_region(ctx: ToolContext[CrmSettings]) -> str:
        """The CRM region."""
        return ctx.settings.region
'''


def test_a_tools_own_settings_are_loaded_and_checked(write_module, monkeypatch):
    crm = write_module("crm", CRM_TOOLS)
    with pytest.raises(ToolLoadError, match="tool crm_region: CRM_API_KEY is not set"):
        load_registry(settings_from_env(monkeypatch, crm))
    monkeypatch.setenv("CRM_API_KEY", "k")
    monkeypatch.setenv("CRM_REGION", "us")
    loaded = load_registry(settings_from_env(monkeypatch, crm)).get("crm_region")
    assert loaded.config.region == "us" and loaded.secrets[0] == "k"


def test_broken_entry_point(tmp_path, make_settings, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    dist = tmp_path / "broken_tools-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-tools\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nx = no_such_module_xyz:thing\n")
    with pytest.raises(ToolLoadError, match="'no_such_module_xyz:thing' could not be loaded"):
        load_registry(make_settings())
