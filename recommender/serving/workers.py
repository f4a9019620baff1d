"""`recommender serve --workers N`: one writer process and N reader processes.

The writer is the whole app with the encoder, listening on a Unix socket only: it takes every
write, encodes, materializes the stored lists and runs the periodic refresh. The readers listen
on the public port, each with its own socket (`SO_REUSEPORT`), so the kernel spreads new
connections evenly across them (with one socket shared by every worker, as uvicorn's
`--workers` does, whichever woke first accepted a whole burst: with 32 keep-alive connections
from wrk one worker used 19.8 s of CPU in 20 s and the other 0.38 s). A reader answers reads
from the store and its mirror, never loads the model (nor imports torch), and hands writes and
text queries to the writer (`recommender.serving.forward`).

The supervisor (this process) starts them all at once (a reader is ready when the writer is),
restarts one that dies, and stops them on SIGTERM or SIGINT, readers first so that the writes
they handed over are answered. Each child dies with the supervisor (`PR_SET_PDEATHSIG`), so a
`kill -9` of the supervisor leaves no process behind. Metrics add up across the processes
through prometheus-client's multiprocess mode: the supervisor points PROMETHEUS_MULTIPROC_DIR at
an empty directory before it starts them (a given one is emptied; otherwise a temporary one,
removed at the end).
"""

from __future__ import annotations

import contextlib
import ctypes
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
PR_SET_PDEATHSIG = 1  # prctl(2)
RUNTIME_PREFIXES = ("recommender-metrics-", "recommender-writer-")
"""The supervisor's temporary directories: `<prefix><its pid>-<random>`."""


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


def _die_with(parent: int) -> None:
    """Be killed when the supervisor dies, however it dies (Linux); exit if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _reader(host: str, port: int, writer_socket: str, options: dict[str, Any], parent: int) -> None:
    _die_with(parent)
    os.environ.update(RECOMMENDER_ROLE="reader", RECOMMENDER_WRITER_SOCKET=writer_socket)
    _run(uvicorn.Config(APP, host=host, port=port, **options), reuseport_socket(host, port))


def _writer(path: str, options: dict[str, Any], parent: int) -> None:
    _die_with(parent)
    os.environ["RECOMMENDER_ROLE"] = "writer"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # left by a writer that died
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    os.chmod(path, 0o600)
    _run(uvicorn.Config(APP, uds=path, **options), sock)


def _run(config: uvicorn.Config, sock: socket.socket) -> None:
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
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
    path = Path(tempfile.mkdtemp(prefix=f"{RUNTIME_PREFIXES[0]}{os.getpid()}-"))
    os.environ[MULTIPROC_ENV] = str(path)
    return path, True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def sweep_runtime_dirs(tmp: Path | None = None) -> list[Path]:
    """Remove the temporary directories of supervisors that died without removing them (a
    `kill -9` leaves its metrics files and the writer's socket behind); a directory whose
    supervisor still runs, or that is not ours, stays. Returns what was removed."""
    removed = []
    root = Path(tmp or tempfile.gettempdir())
    for prefix in RUNTIME_PREFIXES:
        for path in root.glob(f"{prefix}*-*"):
            pid = path.name.removeprefix(prefix).split("-", 1)[0]
            if not pid.isdigit() or not path.is_dir() or path.stat().st_uid != os.getuid():
                continue
            if not _alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def run_workers(workers: int, host: str, port: int, options: dict[str, Any]) -> None:
    """Serve with one writer and `workers` readers until SIGTERM or SIGINT."""
    guard = reuseport_socket(host, port)  # fails here, once, if the port is taken
    for left in sweep_runtime_dirs():
        log.info("removed %s, left by a supervisor that was killed", left)
    path, ours = metrics_dir()
    runtime = Path(tempfile.mkdtemp(prefix=f"{RUNTIME_PREFIXES[1]}{os.getpid()}-"))
    writer_socket = str(runtime / "writer.sock")
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    me = os.getpid()

    def start(role: str) -> multiprocessing.process.BaseProcess:
        if role == "writer":
            process = context.Process(target=_writer, args=(writer_socket, options, me))
        else:
            args = (host, port, writer_socket, options, me)
            process = context.Process(target=_reader, args=args)
        process.start()
        return process

    roles = ["writer"] + ["reader"] * workers
    processes = [start(role) for role in roles]
    try:
        while not stop.wait(0.5):
            for i, process in enumerate(processes):
                if process.is_alive():
                    continue
                if process.pid is not None:
                    mark_process_dead(process.pid, str(path))  # type: ignore[no-untyped-call]
                if process.exitcode == STARTUP_FAILURE:
                    log.error("%s %s failed to start; stopping", roles[i], process.pid)
                    stop.set()
                    break
                log.warning(
                    "%s %s exited (%s); starting another", roles[i], process.pid, process.exitcode
                )
                processes[i] = start(roles[i])
    finally:
        for group in (processes[1:], processes[:1]):  # the readers, then the writer
            for process in group:
                if process.is_alive():
                    process.terminate()
            for process in group:
                process.join()
        guard.close()
        shutil.rmtree(runtime, ignore_errors=True)
        if ours:
            shutil.rmtree(path, ignore_errors=True)
