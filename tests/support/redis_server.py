"""A real redis-server for tests: REDIS_URL when given, else one we start on a free port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def redis_server() -> Iterator[str]:
    """Yield a redis:// URL; a server we started is stopped afterwards."""
    given = os.environ.get("REDIS_URL")
    if given:
        yield given
        return
    with own_redis_server() as url:
        yield url


@contextmanager
def own_redis_server() -> Iterator[str]:
    """Always a fresh redis-server of our own (for tests that stop it)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed and REDIS_URL is not set (.ci/run installs it)")
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        with serving(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
            port,
        ):
            yield f"redis://127.0.0.1:{port}/0"


@contextmanager
def serving(argv: list[str], port: int) -> Iterator[subprocess.Popen]:
    """A redis-server started with `argv`, once it listens on `port`; stopped afterwards."""
    proc = start(argv, port)
    try:
        yield proc
    finally:
        stop(proc)


def start(argv: list[str], port: int) -> subprocess.Popen:
    """A redis-server started with `argv`, once it listens on `port`."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_port(port, proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it does not exit within ten seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start listening in time")


class RestartableRedis:
    """A redis-server of our own that a test stops and starts again on the same port, its data
    kept (append-only file, fsync on every write), as after a crash or a network outage."""

    def __init__(self, workdir: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self._binary, self._workdir = binary, workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen | None = None

    def start(self) -> None:
        self._proc = start(
            [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", self._workdir]
            + ["--appendonly", "yes", "--appendfsync", "always"],
            self.port,
        )

    def freeze(self) -> None:
        """SIGSTOP: the port stays open but nothing answers, as behind a network partition."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)  # a frozen server cannot act on SIGTERM
            stop(self._proc)
        self._proc = None


@contextmanager
def restartable_redis() -> Iterator[RestartableRedis]:
    with tempfile.TemporaryDirectory() as workdir:
        server = RestartableRedis(workdir)
        server.start()
        try:
            yield server
        finally:
            server.stop()
