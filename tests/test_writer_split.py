"""One writer, many readers: `recommender serve` runs one writer process (the encoder, every
write) and reader processes that never load the model and hand writes to the writer."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from recommender.api.app import writer_routes
from recommender.articles import Article
from recommender.serving.forward import Forward
from recommender.serving.workers import RUNTIME_PREFIXES, sweep_runtime_dirs
from tests.server import start_server, stop

KEY = "split-key"
READER_PROBE = """
import json, sys
from fastapi.testclient import TestClient
from recommender.api import create_app

with TestClient(create_app()) as client:
    answers = {
        "related": client.get("/articles/a1001/related?k=3").status_code,
        "box": client.get("/articles/a1001/related.html?k=3").status_code,
        "computed": client.get("/articles/a1001/related?k=3&diversity=0.2").status_code,
        "readyz": client.get("/readyz").json(),
        "put": client.put(
            "/articles/x1",
            json={"title": "Заглавие", "body": "Текст", "published": "2026-11-01T10:00:00Z"},
            headers={"Authorization": "Bearer k"},
        ),
    }
put = answers.pop("put")
answers["put"] = [put.status_code, put.headers.get("retry-after"), put.json()]
heavy = ("torch", "sentence_transformers", "transformers", "recommender.embedding")
answers["loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in heavy[:3]
                           or m.startswith(heavy[3]))
print(json.dumps(answers))
"""


def test_a_reader_answers_reads_without_ever_importing_the_embedding_stage(
    sample_index: Path, tmp_path: Path
) -> None:
    """A reader app over the sample index, with no writer behind its socket: the stored list,
    the box and a computed list answer 200, and a write answers 503 (nothing written) in the one
    error shape; torch, sentence-transformers and `recommender.embedding` were never imported.
    (Before the split, `recommender.api` imported the encoder module at its top.)"""
    env = dict(
        os.environ,
        RECOMMENDER_ROLE="reader",
        RECOMMENDER_WRITER_SOCKET=str(tmp_path / "nobody.sock"),
        RECOMMENDER_INDEX_DIR=str(sample_index),
        RECOMMENDER_API_KEYS="k",
        RECOMMENDER_ACCESS_LOG="false",
    )
    out = subprocess.run(
        [sys.executable, "-c", READER_PROBE], env=env, capture_output=True, text=True, check=True
    )
    answers = json.loads(out.stdout.strip().splitlines()[-1])
    assert (answers["related"], answers["box"], answers["computed"]) == (200, 200, 200)
    assert answers["readyz"]["error"].startswith("writer not ready")
    status, retry_after, body = answers["put"]
    assert (status, retry_after) == (503, "1")
    assert "nothing was written" in body["error"]
    assert answers["loaded"] == []


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _alive(pid: int) -> bool:
    """Running: a process killed but not yet reaped by its new parent (a zombie) is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _maps_torch(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def _ready(base: str, timeout: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{base}/readyz", timeout=2)
            if r.status_code == 200:
                body: dict[str, object] = r.json()
                return body
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not ready in {timeout} s")


@pytest.mark.slow
def test_the_writer_is_its_own_process_and_a_killed_one_is_replaced_while_reads_go_on(
    tmp_path: Path, sample_index: Path, model_dir: Path, sample_articles: list[Article]
) -> None:
    """`serve --workers 2`: three children, of which only the writer maps torch; a write through
    a reader is the writer's (the writer's pid and seq in /readyz). The writer killed with
    SIGKILL: reads go on, writes answer 503 with Retry-After until the supervisor's new writer
    is ready, and the write acknowledged before the kill is there. The supervisor killed with
    SIGKILL takes every child with it."""
    index = tmp_path / "idx"
    shutil.copytree(sample_index, index)
    log = tmp_path / "server.log"
    proc, base = start_server(
        index, model_dir, tmp_path / "cache.sqlite", log, workers=2, RECOMMENDER_API_KEYS=KEY
    )
    auth = {"Authorization": f"Bearer {KEY}"}
    body = sample_articles[0].model_dump(mode="json", exclude={"id"})
    try:
        children = _children(proc.pid)
        ready = _ready(base)
        writer = ready["writer"]
        assert isinstance(writer, dict)
        writer_pid = int(writer["pid"])
        workers = {c for c in children if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()}
        assert len(workers) == 3 and writer_pid in workers
        assert [_maps_torch(p) for p in sorted(workers)] == [
            p == writer_pid for p in sorted(workers)
        ]

        first = httpx.put(f"{base}/articles/split-1", json=body, headers=auth, timeout=60)
        assert first.status_code == 201
        assert httpx.get(f"{base}/articles/split-1/related", timeout=5).status_code == 200

        os.kill(writer_pid, signal.SIGKILL)
        refused = httpx.put(f"{base}/articles/split-2", json=body, headers=auth, timeout=60)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "writer" in refused.json()["error"]
        assert httpx.get(f"{base}/articles/split-1/related", timeout=5).status_code == 200

        again = _ready(base)
        assert isinstance(again["writer"], dict) and again["writer"]["pid"] != writer_pid
        second = httpx.put(f"{base}/articles/split-2", json=body, headers=auth, timeout=60)
        assert second.status_code == 201
        assert httpx.get(f"{base}/articles/split-1", timeout=5).status_code == 200

        survivors = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while any(_alive(c) for c in survivors) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [c for c in survivors if _alive(c)]
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{base}/healthz", timeout=2)
    finally:
        if proc.poll() is None:
            stop(proc)


def test_a_body_cut_by_the_client_is_not_handed_to_the_writer(tmp_path: Path) -> None:
    """A PUT whose client disconnects after 3 of its 10 bytes: the reader hands nothing to the
    writer and answers nothing. (Before, it forwarded the 3 bytes under the client's
    Content-Length of 10: h11 raised LocalProtocolError in the reader, a 500.)"""
    path = tmp_path / "writer.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()
    listener.settimeout(3)
    accepted: list[bytes] = []

    def writer() -> None:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            return
        conn.settimeout(1)
        accepted.append(conn.recv(65536))
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    messages = iter(
        [
            {"type": "http.request", "body": b'{"t', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[object] = []

    async def receive() -> dict[str, object]:
        return next(messages)

    async def send(message: object) -> None:
        sent.append(message)

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("a write must not reach the reader's own routes")

    scope = {
        "type": "http",
        "method": "PUT",
        "path": "/articles/cut",
        "raw_path": b"/articles/cut",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"10")],
    }
    forward = Forward(app, writer_routes(), path)
    asyncio.run(asyncio.wait_for(forward(scope, receive, send), timeout=5))
    thread.join()
    listener.close()
    assert accepted == [] and sent == []


def test_a_killed_supervisors_directories_are_removed_by_the_next_one(tmp_path: Path) -> None:
    """A supervisor killed with SIGKILL leaves its metrics directory and the writer's socket
    directory in the temporary directory; the next one removes those whose supervisor is dead
    and leaves a running one's, and what is not of that shape."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = [tmp_path / f"{p}{dead.pid}-abc" for p in RUNTIME_PREFIXES]
    running = [tmp_path / f"{p}{os.getpid()}-def" for p in RUNTIME_PREFIXES]
    other = [tmp_path / "recommender-writer-x", tmp_path / "recommender-notes-1-a"]
    for path in left + running + other:
        path.mkdir()
    (left[1] / "writer.sock").write_bytes(b"")
    assert sorted(sweep_runtime_dirs(tmp_path)) == sorted(left)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in running + other)
