"""A real API server (`recommender serve`, uvicorn) in a subprocess on 127.0.0.1, always stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from recommender.config import Settings

HOST = "127.0.0.1"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]

    def peak_rss_mib(self) -> float | None:
        """The server's peak resident memory (VmHWM), while it runs."""
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            pass
        return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@contextmanager
def serve(index_dir: Path, settings: Settings, log_path: Path) -> Iterator[Server]:
    """Start `recommender serve` on a free port, wait until ready, and stop it on exit."""
    port = free_port()
    env = os.environ | {
        "RECOMMENDER_MODELS_DIR": str(settings.models_dir.resolve()),
        "RECOMMENDER_MODEL": settings.model,
        "RECOMMENDER_BACKEND": settings.backend,
    }
    command = [sys.executable, "-m", "recommender.cli", "serve"]
    command += ["--index", str(index_dir), "--host", HOST, "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        server = Server(f"http://{HOST}:{port}", process)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not _ready(server.url):
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"server did not become ready:\n{tail}")
                time.sleep(0.2)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
