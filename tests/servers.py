"""Real `recommender serve` processes on free loopback ports, for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    index: Path, model_dir: Path, cache: Path, *, workers: int = 1, **env: str
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server over `index` and wait until /readyz answers 200."""
    port = free_port()
    environ = dict(
        os.environ,
        RECOMMENDER_INDEX_DIR=str(index),
        RECOMMENDER_MODELS_DIR=str(model_dir.parent),
        RECOMMENDER_CACHE_PATH=str(cache),
        **env,
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recommender.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(proc.stdout.read().decode() if proc.stdout else "server died")
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become ready in 120 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
