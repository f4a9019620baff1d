"""Real `recommender serve` processes on free loopback ports, for end-to-end tests. Their output
goes to a log file (a pipe nobody reads would fill with access-log lines and stall them)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

READY_SECONDS = 120


def free_port() -> int:
    """A loopback port free now. Under pytest-xdist each worker takes its own share of the
    ports: a server binds its port with SO_REUSEPORT seconds after this returns, so two workers
    handed one port would both bind it and answer each other's requests."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        # bind(0) hands out ports of one parity (Linux), so the share is by port // 2
        if port // 2 % workers == worker:
            return port


def build_command(
    input_path: Path, index: Path, model_dir: Path, cache: Path, *extra: str
) -> tuple[list[str], dict[str, str]]:
    """`recommender index build` of `input_path` into `index` (with `extra` arguments) as a
    process: (argv, env)."""
    env = dict(
        os.environ,
        RECOMMENDER_MODELS_DIR=str(model_dir.parent),
        RECOMMENDER_CACHE_PATH=str(cache),
    )
    cli = [sys.executable, "-m", "recommender.cli"]
    args = ["index", "build", "--input", str(input_path), "--index", str(index), "--no-progress"]
    return [*cli, *args, *extra], env


def start_server(
    index: Path, model_dir: Path, cache: Path, log: Path, *, workers: int = 1, **env: str
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server over `index` and wait until /readyz answers 200: (process, base URL)."""
    port = free_port()
    environ = dict(
        os.environ,
        RECOMMENDER_INDEX_DIR=str(index),
        RECOMMENDER_MODELS_DIR=str(model_dir.parent),
        RECOMMENDER_CACHE_PATH=str(cache),
        **env,
    )
    command = [sys.executable, "-m", "recommender.cli", "serve", "--port", str(port)]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*command, "--workers", str(workers)], env=environ, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(log.read_text(errors="replace"))
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"server did not become ready in {READY_SECONDS} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def running_server(
    index: Path, model_dir: Path, cache: Path, log: Path, **env: str
) -> Iterator[str]:
    """The base URL of a server ready to answer; stopped (and waited for) on exit."""
    proc, base = start_server(index, model_dir, cache, log, **env)
    try:
        yield base
    finally:
        stop(proc)
