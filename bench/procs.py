"""Child processes of the bench (redis-server, bot processes, the fake OpenAI, probes,
redis-cli MONITOR): each in its own process group, all ended by `Procs.close()`
— called from a finally block and at exit — even when the bench fails."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


class Procs:
    """Owns every process the bench starts."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._procs: list[subprocess.Popen] = []
        atexit.register(self.close)

    def spawn(
        self,
        args: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        log: str | None = None,
        stdout=None,
        stdin=None,
    ) -> subprocess.Popen:
        err = open(self.workdir / log, "ab") if log else subprocess.DEVNULL
        proc = subprocess.Popen(
            args,
            env=env,
            cwd=cwd or ROOT,
            stdout=stdout if stdout is not None else err,
            stderr=err,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            start_new_session=True,
        )  # its own process group, killed as one
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, *, grace: float = 10.0, sig: int = signal.SIGTERM) -> int | None:
        if proc.poll() is None:
            try:
                os.kill(proc.pid, sig)
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._kill_group(proc)
            except ProcessLookupError:
                pass
        self._kill_group(proc)  # leftovers of the group, if any
        if proc in self._procs:
            self._procs.remove(proc)
        return proc.returncode

    @staticmethod
    def _kill_group(proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        for proc in list(reversed(self._procs)):
            self.stop(proc, grace=5.0)


# ---------------------------------------------------------------- redis
class RedisServer:
    def __init__(self, procs: Procs, binary: str = "/usr/bin/redis-server") -> None:
        self.port = free_port()
        self.proc = procs.spawn(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
                "--daemonize",
                "no",
                "--dir",
                str(procs.workdir),
            ],
            log="redis.log",
        )
        wait_port(self.port, 10, self.proc)
        import redis

        self.client = redis.Redis(port=self.port, decode_responses=True)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def reset(self) -> None:
        self.client.flushall()
        self.client.config_resetstat()

    def commandstats(self) -> dict[str, int]:
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in self.client.info("commandstats").items()}

    def total_commands(self) -> int:
        return int(self.client.info("stats")["total_commands_processed"])


# ---------------------------------------------------------------- the bot
BOT_ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


def bot_env(
    *,
    slack_url: str,
    openai_url: str,
    redis_url: str,
    port: int,
    interval: float,
    updates_per_minute: float,
    signing_secret: str,
    bot_token: str,
    api_key: str,
    lag_file: Path | None,
    stream_mode: str = "edit",
    appends_per_minute: float | None = None,
) -> dict[str, str]:
    if ":0/" in redis_url or redis_url.rstrip("/").endswith(":0"):
        raise ValueError(f"refusing REDIS_URL {redis_url!r}: port 0 would reach the default 6379")
    env = {k: os.environ[k] for k in BOT_ENV_KEEP if k in os.environ}  # nothing else leaks in
    env.update(
        {
            "SLACK_BOT_TOKEN": bot_token,
            "SLACK_API_URL": slack_url,
            "SLACK_SIGNING_SECRET": signing_secret,
            "OPENAI_API_KEY": api_key,
            "OPENAI_BASE_URL": openai_url,
            "REDIS_URL": redis_url,
            "PORT": str(port),
            "ASSIST_BOT_HOST": "127.0.0.1",
            "ASSIST_BOT_UPDATE_INTERVAL": str(interval),
            "ASSIST_BOT_OPENAI_MAX_RETRIES": "0",
            "ASSIST_BOT_SLACK_UPDATES_PER_MINUTE": str(updates_per_minute),
            "ASSIST_BOT_STREAM_MODE": stream_mode,
            "ASSIST_BOT_LOG_LEVEL": "WARNING",
            "ASSIST_BOT_SHUTDOWN_GRACE": "3",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if appends_per_minute is not None:  # unset: the bot learns the limit from Slack's 429s
        env["ASSIST_BOT_SLACK_APPENDS_PER_MINUTE"] = str(appends_per_minute)
    if lag_file is not None:
        env["PYTHONPATH"] = str(ROOT / "bench" / "inject")  # sitecustomize: loop-lag sampler, src untouched
        env["BENCH_LAG_FILE"] = str(lag_file)
    return env


class Bot:
    """One `python -m assist_bot run --mode http` process."""

    def __init__(self, procs: Procs, env: dict[str, str], *, name: str, profile: Path | None = None) -> None:
        self.port = int(env["PORT"])
        self.name = name
        self.lag_file = Path(env["BENCH_LAG_FILE"]) if "BENCH_LAG_FILE" in env else None
        self.cwd = Path(tempfile.mkdtemp(prefix="bot-", dir=procs.workdir))  # no stray .env is read
        args = [PYTHON, "-m", "assist_bot", "run", "--mode", "http"]
        if profile is not None:
            args = [PYTHON, "-m", "cProfile", "-o", str(profile), "-m", "assist_bot", "run", "--mode", "http"]
        self.procs = procs
        self.proc = procs.spawn(args, env=env, cwd=self.cwd, log=f"{name}.log")
        self.ps = psutil.Process(self.proc.pid)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        import http.client

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bot {self.name} exited with {self.proc.returncode}; see {self.name}.log")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"bot {self.name} not healthy after {timeout}s")

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def rss(self) -> int:
        return self.ps.memory_info().rss

    def peak_rss(self) -> int:
        """VmHWM: the process's resident-set high-water mark, in bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> int | None:
        return self.procs.stop(self.proc, grace=20.0)
