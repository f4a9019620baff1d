"""A real API server (`recommender serve`: a writer and 1 or more readers) in a subprocess on
127.0.0.1, always stopped (its whole process group is killed if it does not stop in time)."""

from __future__ import annotations

import json
import os
import signal
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
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 10.0
STARTED = b"Application startup complete."


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]
    workers: int

    def pids(self) -> list[int]:
        """The server process and its children (the writer and the readers)."""
        pids = [self.process.pid]
        try:
            for task in Path(f"/proc/{self.process.pid}/task").iterdir():
                pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
        return pids

    def writer_pid(self) -> int | None:
        """The writer process's pid, as /readyz names it (None when it does not answer)."""
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=5) as response:
                return int(json.load(response)["writer"]["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def memory_mib(self, field: str = "VmRSS") -> dict[int, float]:
        """A memory figure of /proc/PID/status (VmRSS: resident now, VmHWM: its peak) of the
        server process and each worker, in MiB, by pid."""
        out = {}
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(f"{field}:"):
                        out[pid] = int(line.split()[1]) / 1024
            except OSError:
                continue
        return out

    def peak_rss_mib(self) -> float | None:
        """Peak resident memory (VmHWM) summed over the server and its workers, while it runs."""
        total = sum(self.memory_mib("VmHWM").values())
        return round(total, 1) if total else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@contextmanager
def serve(
    index_dir: Path,
    settings: Settings,
    log_path: Path,
    workers: int = 1,
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """Start `recommender serve` on a free port, wait until the writer and every reader have
    started and the API answers /readyz, and stop it on exit."""
    port = free_port()
    child_env = (
        os.environ
        | {
            "RECOMMENDER_MODELS_DIR": str(settings.models_dir.resolve()),
            "RECOMMENDER_MODEL": settings.model,
            "RECOMMENDER_BACKEND": settings.backend,
            "RECOMMENDER_CACHE_PATH": str(settings.cache_path.resolve()),
        }
        | (env or {})
    )
    command = [sys.executable, "-m", "recommender.cli", "serve", "--index", str(index_dir)]
    command += ["--host", HOST, "--port", str(port), "--workers", str(workers)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=child_env, start_new_session=True
        )
        server = Server(f"http://{HOST}:{port}", process, workers)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while log_path.read_bytes().count(STARTED) < workers + 1 or not ready(server.url):
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
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
