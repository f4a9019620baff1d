"""`recommender serve --workers N`: N uvicorn worker processes, each with its own listening
socket on the same port (`SO_REUSEPORT`), so the kernel spreads new connections evenly across
them. With one socket shared by every worker (uvicorn's `--workers`), whichever worker woke
first accepted a whole burst of connections: with 32 keep-alive connections from wrk one worker
used 19.8 s of CPU in 20 s and the other 0.38 s.

The supervisor (this process) starts the workers, restarts one that dies, and stops them on
SIGTERM or SIGINT. Metrics add up across the workers through prometheus-client's multiprocess
mode: the supervisor points PROMETHEUS_MULTIPROC_DIR at an empty directory before it starts
them (a given one is emptied; otherwise a temporary one, removed at the end).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client.multiprocess import mark_process_dead

log = logging.getLogger("recommender.serving")

APP = "recommender.api:create_app"
STARTUP_FAILURE = 3
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT. Its protocol is stated as
    IPPROTO_TCP: accepted connections inherit it, and asyncio sets TCP_NODELAY only on
    IPPROTO_TCP sockets; with protocol 0 (how uvicorn binds) Nagle stayed on and every
    keep-alive answer after the first waited ~40 ms for the client's delayed ACK (uvicorn
    issue #3149)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(host: str, port: int, options: dict[str, Any]) -> None:
    config = uvicorn.Config(APP, host=host, port=port, **options)
    server = uvicorn.Server(config)
    server.run(sockets=[reuseport_socket(host, port)])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def metrics_dir() -> tuple[Path, bool]:
    """The multiprocess metrics directory, emptied: (path, whether it is ours to remove)."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for old in path.glob("*.db"):
            old.unlink()
        return path, False
    path = Path(tempfile.mkdtemp(prefix="recommender-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    return path, True


def run_workers(workers: int, host: str, port: int, options: dict[str, Any]) -> None:
    """Serve with `workers` processes until SIGTERM or SIGINT."""
    guard = reuseport_socket(host, port)  # fails here, once, if the port is taken
    path, ours = metrics_dir()
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def start() -> multiprocessing.process.BaseProcess:
        process = context.Process(target=_worker, args=(host, port, options), daemon=False)
        process.start()
        return process

    processes = [start() for _ in range(workers)]
    try:
        while not stop.wait(0.5):
            for i, process in enumerate(processes):
                if process.is_alive():
                    continue
                if process.pid is not None:
                    mark_process_dead(process.pid, str(path))  # type: ignore[no-untyped-call]
                if process.exitcode == STARTUP_FAILURE:
                    log.error("worker %s failed to start; stopping", process.pid)
                    stop.set()
                    break
                log.warning(
                    "worker %s exited (%s); starting another", process.pid, process.exitcode
                )
                processes[i] = start()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join()
        guard.close()
        if ours:
            shutil.rmtree(path, ignore_errors=True)
