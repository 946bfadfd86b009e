"""The installed `assist-bot` console script, run as a subprocess the way people run it."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.processes import child_env

SCRIPT = Path(sys.executable).with_name("assist-bot")


def script_env(**values: Any) -> dict[str, str]:
    """PATH plus exactly these settings (None leaves one out), and coverage's hook (child_env)."""
    env = {"PATH": os.environ.get("PATH", "")}
    env.update({k: str(v) for k, v in values.items() if v is not None})
    return child_env(env)


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.strip().splitlines()

    def line(self, what: str) -> str:
        """The one output line about `what`, its status column squeezed: "failed slack: …"."""
        found = [line for line in self.lines if line[8:].startswith(f"{what}:")]
        assert len(found) == 1, f"no single line about {what!r} in:\n{self.stdout}\n{self.stderr}"
        return f"{found[0][:8].strip()} {found[0][8:]}"


async def run_script(*args: str, env: dict[str, str], cwd: Path, stdin: bytes | None = None) -> Finished:
    proc = await asyncio.create_subprocess_exec(
        str(SCRIPT),
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=40)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return Finished(proc.returncode or 0, out.decode(), err.decode())
