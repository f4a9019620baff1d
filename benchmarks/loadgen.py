"""Load generator, run as its own process: `python -m benchmarks.loadgen URL IDS_FILE MODE ...`.

closed: `concurrency` clients, each sending its next request when the last one is answered, until
`requests` are sent or `max_seconds` pass. open: requests scheduled at a fixed `rate` whatever
the server does; latency is measured from the scheduled time, so queueing counts (no coordinated
omission); `--html-share` sends that share of them to the HTML box instead of the JSON list,
spread evenly; `--stop-file` ends it early once that file exists, and `--samples FILE` writes
every request as a line `scheduled_unix_time latency_s error kind` (error `-` for a 200 answer,
kind `json` or `html`). Both modes are bounded in request count and time; one JSON object is
printed on stdout.
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks.stats import latency_ms

TIMEOUT_S = 5.0
OPEN_WORKERS = 64


Sample = tuple[float, float, str, str]  # scheduled unix time, latency s, error or "-", kind


def read_samples(path: Path) -> list[Sample]:
    """The lines `--samples` wrote."""
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            at, latency, error, kind = line.split()
            rows.append((float(at), float(latency), error, kind))
    return rows


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    samples: list[Sample] = field(default_factory=list)

    def record(
        self, latency: float, error: str | None, at: float | None = None, kind: str = "json"
    ) -> None:
        with self.lock:
            if error is None:
                self.latencies.append(latency)
            else:
                self.errors[error] += 1
            if at is not None:
                self.samples.append((at, latency, error or "-", kind))


class Client:
    """One keep-alive connection; reconnects after a failure."""

    def __init__(self, host: str, port: int, timeout: float = TIMEOUT_S) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def send(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Status and body; a failed connection is replaced and the error raised."""
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            response = self.conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            raise

    def get(self, path: str) -> str | None:
        """None on a 200 answer, else the kind of error."""
        try:
            status, _ = self.send("GET", path)
        except (OSError, http.client.HTTPException) as exc:
            return type(exc).__name__
        return None if status == 200 else f"HTTP {status}"


GOLDEN = 0.6180339887498949


def _path(article_id: str, html: bool = False) -> str:
    return f"/articles/{article_id}/related{'.html' if html else ''}?k=5"


def is_html(i: int, share: float) -> bool:
    """Whether request `i` asks for the HTML box: a share of requests spread evenly."""
    return (i * GOLDEN) % 1.0 < share


def closed_loop(
    host: str, port: int, ids: list[str], concurrency: int, requests: int, max_seconds: float
) -> dict[str, Any]:
    """Request i asks for ids[i]: give each run its own slice of distinct ids to stay uncached."""
    tally = Tally()
    counter = iter(range(requests))
    counter_lock = threading.Lock()
    deadline = time.perf_counter() + max_seconds

    def worker() -> None:
        client = Client(host, port)
        while time.perf_counter() < deadline:
            with counter_lock:
                i = next(counter, None)
            if i is None:
                break
            t0 = time.perf_counter()
            error = client.get(_path(ids[i % len(ids)]))
            tally.record(time.perf_counter() - t0, error)
        client.conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return _summary(tally, time.perf_counter() - started) | {"concurrency": concurrency}


def open_loop(
    host: str,
    port: int,
    ids: list[str],
    rate: float,
    seconds: float,
    stop_file: Path | None = None,
    samples: Path | None = None,
    html_share: float = 0.0,
) -> dict[str, Any]:
    tally = Tally()
    wall_offset = time.time() - time.perf_counter()
    total = int(rate * seconds)
    jobs: queue.Queue[tuple[int, float] | None] = queue.Queue()
    deadline = time.perf_counter() + seconds * 2 + TIMEOUT_S

    def worker() -> None:
        client = Client(host, port)
        while (job := jobs.get()) is not None:
            i, scheduled = job
            if time.perf_counter() > deadline:
                tally.record(0.0, "not sent (time limit)")
                continue
            html = is_html(i, html_share)
            error = client.get(_path(ids[i % len(ids)], html))
            at = scheduled + wall_offset if samples is not None else None
            tally.record(time.perf_counter() - scheduled, error, at, "html" if html else "json")
        client.conn.close()

    threads = [threading.Thread(target=worker) for _ in range(OPEN_WORKERS)]
    for t in threads:
        t.start()
    started = time.perf_counter()
    sent = 0
    for i in range(total):
        if stop_file is not None and stop_file.exists():
            break
        scheduled = started + i / rate
        time.sleep(max(0.0, scheduled - time.perf_counter()))
        jobs.put((i, scheduled))
        sent += 1
    send_seconds = time.perf_counter() - started
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join()
    summary = _summary(tally, time.perf_counter() - started)
    if samples is not None:
        lines = (
            f"{at:.6f} {latency:.6f} {error.replace(' ', '_')} {kind}"
            for at, latency, error, kind in tally.samples
        )
        samples.write_text("\n".join(sorted(lines)) + "\n")
    return summary | {
        "rate": rate,
        "offered": sent,
        "send_rate": round(sent / send_seconds, 1) if send_seconds else 0.0,
    }


def _summary(tally: Tally, seconds: float) -> dict[str, Any]:
    ok = len(tally.latencies)
    return {
        "requests": ok + sum(tally.errors.values()),
        "ok": ok,
        "errors": sum(tally.errors.values()),
        "error_kinds": dict(tally.errors),
        "seconds": round(seconds, 3),
        "throughput_rps": round(ok / seconds, 1) if seconds else 0.0,
        "latency_ms": latency_ms(tally.latencies),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="http://127.0.0.1:PORT")
    parser.add_argument("ids", type=Path, help="file of article ids, one a line")
    parser.add_argument("--offset", type=int, default=0, help="start at this line of IDS")
    sub = parser.add_subparsers(dest="mode", required=True)
    closed = sub.add_parser("closed")
    closed.add_argument("--concurrency", type=int, required=True)
    closed.add_argument("--requests", type=int, required=True)
    closed.add_argument("--max-seconds", type=float, required=True)
    opened = sub.add_parser("open")
    opened.add_argument("--rate", type=float, required=True)
    opened.add_argument("--seconds", type=float, required=True, help="at most this long")
    opened.add_argument("--stop-file", type=Path, help="stop sending once this file exists")
    opened.add_argument("--samples", type=Path, help="write every request's time and latency")
    opened.add_argument(
        "--html-share", type=float, default=0.0, help="share of requests for the HTML box"
    )
    args = parser.parse_args(argv)
    url = urlsplit(args.url)
    if url.hostname != "127.0.0.1" or url.port is None:
        parser.error("the load generator only targets http://127.0.0.1:PORT")
    ids = args.ids.read_text().split()[args.offset :]
    if args.mode == "closed":
        result = closed_loop(
            url.hostname, url.port, ids, args.concurrency, args.requests, args.max_seconds
        )
    else:
        result = open_loop(
            url.hostname,
            url.port,
            ids,
            args.rate,
            args.seconds,
            args.stop_file,
            args.samples,
            args.html_share,
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
