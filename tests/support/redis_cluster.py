"""A real three-node Redis Cluster for tests: three `redis-server --cluster-enabled yes`
on free ports, joined with `redis-cli --cluster create`, stopped afterwards."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from tests.support.redis_server import free_port, serving

NODES = 3


@contextmanager
def redis_cluster() -> Iterator[str]:
    """Yield a `redis+cluster://` URL naming one node of a fresh three-node cluster."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        raise RuntimeError("redis-server and redis-cli are needed for the cluster tests (.ci/run installs them)")
    with tempfile.TemporaryDirectory() as workdir, contextlib.ExitStack() as stack:
        ports = []
        for n in range(NODES):
            port = free_port()
            # The bus port is given too: port + 10000 (Redis' default) may be taken or past 65535.
            node_dir = Path(workdir, str(n))
            node_dir.mkdir()
            stack.enter_context(_node(server, port, free_port(), node_dir))
            ports.append(port)
        addresses = [f"127.0.0.1:{port}" for port in ports]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )
        for port in ports:
            _wait_cluster_ok(cli, port)
        yield f"redis+cluster://127.0.0.1:{ports[0]}"


def _node(server: str, port: int, bus_port: int, workdir: Path) -> AbstractContextManager[subprocess.Popen]:
    return serving(
        [
            server,
            "--port",
            str(port),
            "--cluster-port",
            str(bus_port),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(workdir / "nodes.conf"),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],  # fmt: skip
        port,
    )


def _wait_cluster_ok(cli: str, port: int, timeout: float = 20.0) -> None:
    """Every node must see every slot covered before the first command."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = subprocess.run(
            [cli, "-p", str(port), "cluster", "info"], capture_output=True, text=True, timeout=5
        ).stdout
        if "cluster_state:ok" in info:
            return
        time.sleep(0.1)
    raise RuntimeError(f"the Redis Cluster node on port {port} never reported cluster_state:ok")
