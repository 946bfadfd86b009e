"""The container: the Dockerfile is linted here (non-root, no build tools in the final
stage, pinned install, health check, entrypoint), its health check command is run
against a real bot's metrics port, compose.yaml only sets settings the code reads, and
the image is built where a Docker engine answers (skipped otherwise, with the reason)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from assist_bot.settings import Settings
from tests.support.bot import running_bot

ROOT = Path(__file__).parents[1]
COMPILERS = ("gcc", "g++", "cc", "clang", "make", "build-essential", "python3-dev", "libc6-dev")


def instructions(path: Path = ROOT / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined, current = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        current += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            joined.append(current)
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in joined]


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def test_multi_stage_and_the_final_stage_has_no_build_tools():
    build, final = stages()[0], stages()[-1]
    assert len(stages()) >= 2
    assert "AS build" in build[0][1]
    assert any(op == "COPY" and args.startswith("--from=build /opt/venv") for op, args in final)
    runs = " ".join(args for op, args in final if op == "RUN")
    assert not any(f" {tool} " in f" {runs} " for tool in COMPILERS), runs
    assert "apt-get install" not in runs and "pip install" not in runs


def test_the_final_image_is_slim():
    args = {
        args.split("=", 1)[0].removeprefix("ARG "): args.split("=", 1)[1] for op, args in instructions() if op == "ARG"
    }
    image = stages()[-1][0][1].strip()
    assert image == "${PYTHON_IMAGE}" and args["PYTHON_IMAGE"].endswith("-slim")


def test_runs_as_a_non_root_user():
    users = [args.split(":")[0] for op, args in stages()[-1] if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    # The uid exists in the final image: the stage creates it.
    assert any(op == "RUN" and f"--uid {users[-1]}" in args for op, args in stages()[-1])


def test_installs_with_the_pinned_constraints():
    build = stages()[0]
    copied = " ".join(args for op, args in build if op == "COPY")
    assert "constraints.txt" in copied
    assert any(op == "RUN" and "pip install" in args and "-c constraints.txt" in args for op, args in build)
    ignored = (ROOT / ".dockerignore").read_text().split()
    for name in ("constraints.txt", "pyproject.toml", "README.md", "LICENSE", "src"):
        assert (ROOT / name).exists() and name not in ignored  # what the build copies reaches it
    assert {".env", ".git", ".venv"} <= set(ignored)  # secrets and local state never do


def test_entrypoint_runs_the_bot():
    final = dict(stages()[-1])
    assert json.loads(final["ENTRYPOINT"]) == ["assist-bot"]
    assert json.loads(final["CMD"]) == ["run"]


def healthcheck_command() -> list[str]:
    (check,) = [args for op, args in stages()[-1] if op == "HEALTHCHECK"]
    assert "--interval=" in check and "--timeout=" in check
    return json.loads(check[check.index("CMD") + 3 :].strip())


async def test_the_health_check_command_passes_against_a_socket_mode_bot(slack, openai_fake, tmp_path):
    command = healthcheck_command()
    assert command[0] == "python" and "/healthz" in command[-1] and "ASSIST_BOT_METRICS_PORT" in command[-1]
    env_default = dict(args.split("=", 1) for op, line in stages()[-1] if op == "ENV" for args in line.split())
    assert env_default["ASSIST_BOT_METRICS_PORT"] == "9090"  # the image turns the listener on

    async def probe(port: int) -> int:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *command[1:], env={"ASSIST_BOT_METRICS_PORT": str(port)}, cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        return await asyncio.wait_for(proc.wait(), timeout=20)

    async with running_bot(slack, openai_fake, socket_mode=True, ASSIST_BOT_METRICS_PORT=0) as bot:
        assert bot.bot.metrics_listener is not None and bot.bot.metrics_listener.port
        port = bot.bot.metrics_listener.port
        assert await probe(port) == 0
    assert await probe(port) != 0  # and fails once nothing answers


def test_compose_sets_only_settings_the_code_reads():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    bot, redis = compose["services"]["bot"], compose["services"]["redis"]
    aliases = {field.alias for field in Settings.model_fields.values()}
    assert set(bot["environment"]) <= aliases, set(bot["environment"]) - aliases
    assert bot["build"] == "." and bot["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert bot["depends_on"]["redis"]["condition"] == "service_healthy" and "healthcheck" in redis
    assert any(str(p).startswith("9090:") for p in bot["ports"])
    assert bot["env_file"][0]["path"] == ".env" and bot["env_file"][0]["required"] is False


def docker_engine() -> str | None:
    """None when a Docker engine answers, else why not."""
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    return None if info.returncode == 0 else "docker info failed: no Docker engine reachable here"


@pytest.mark.timeout(900)
def test_the_image_builds():
    reason = docker_engine()
    if reason:
        pytest.skip(reason)
    build = subprocess.run(
        ["docker", "build", "-t", "assist-bot:test", str(ROOT)], capture_output=True, text=True, timeout=850
    )
    assert build.returncode == 0, build.stderr[-2000:]
    who = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "id", "assist-bot:test", "-u"], capture_output=True, text=True
    )
    assert who.stdout.strip() == "10001"
