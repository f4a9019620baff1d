"""A real `recommender serve` on a free loopback port, for the end-to-end tests."""

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

READY_SECONDS = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(
    index: Path, model_dir: Path, cache: Path, log: Path, **env: str
) -> Iterator[str]:
    """The base URL of a server ready to answer; stopped (and waited for) on exit."""
    port = free_port()
    environ = dict(
        os.environ,
        RECOMMENDER_INDEX_DIR=str(index),
        RECOMMENDER_MODELS_DIR=str(model_dir.parent),
        RECOMMENDER_CACHE_PATH=str(cache),
        **env,
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "recommender.cli", "serve", "--port", str(port)],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(log.read_text())
            time.sleep(0.2)
        else:
            raise RuntimeError(f"server did not become ready in {READY_SECONDS} s")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)
