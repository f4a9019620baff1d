"""Publishing into a served index: new articles of existing stories, a stream of writes under
reads, a bulk write and unpublishing, on a real server over the real corpus.

Held back from the index: the latest article of `publish_stories` stories (a dev query with its
grade 3 and 2 judgements is a story; its older articles stay indexed), the newest
`publish_stream` + `publish_bulk` other articles of the corpus. The rest is indexed with
`build_index` and served by `recommender serve --workers publish_workers` with a write key and an
empty embedding cache (every write is encoded, as a new article is). Then:
1. each story's latest article is PUT; from the moment the PUT returns, the older articles' lists
   are read (GET, default parameters, `max_k` items) until they show it or `publish_wait_s`
   passes. A pair counts as expected when a list computed afterwards in process (same index,
   default parameters) holds the new article: the time to visible is measured on those pairs
   (target p99 <= 1 s; the lists are written in the PUT's transaction, so it should be the
   first read);
2. reads at `open_rate` req/s for `burst_seconds` without writes, then the same while one client
   PUTs the stream articles one after the other: the sustained publish rate with encoding and
   the read latency during the burst;
3. one `POST /articles` of the bulk articles;
4. `publish_deletes` published articles are unpublished; every list that showed one is read
   once after the DELETE returns (target: gone on that read).
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from benchmarks.context import RunContext
from benchmarks.corpus import read_corpus_articles
from benchmarks.http_load import LOADGEN_GRACE_S, corpus_ids_file, loadgen, warm_up
from benchmarks.loadgen import Client
from benchmarks.relevance import judgement_files
from benchmarks.server import serve
from benchmarks.stats import latency_ms
from recommender.articles import Article
from recommender.embedding.encoder import ArticleEncoder
from recommender.engine import Engine
from recommender.eval.files import load_qrels, read_queries
from recommender.indexing import build_index
from recommender.ranking.related import RelatedQuery

TARGET_VISIBLE_P99_S = 1.0
KEY = "benchmark-write-key"
POLL_S = 0.005
WRITE_TIMEOUT_S = 300.0


def _stories(ctx: RunContext, by_id: dict[str, Article]) -> list[list[str]]:
    """Stories (query and grade 3/2 judgements) with at least two dated, indexed articles."""
    files = judgement_files(ctx.data)
    if files is None:
        return []
    qrels = load_qrels(files[1])
    stories = []
    for query in read_queries(files[0]):
        members = [query] + [d for d, g in qrels.get(query, {}).items() if g >= 2]
        members = [m for m in dict.fromkeys(members) if m in by_id and by_id[m].published]
        if len(members) >= 2:
            stories.append(members)
    return stories


def hold_back(
    ctx: RunContext, articles: list[Article]
) -> tuple[list[tuple[str, list[str]]], list[Article], list[Article]]:
    """(new id, older ids) per chosen story, the stream articles and the bulk articles."""
    p = ctx.profile
    by_id = {a.id: a for a in articles}

    def when(article_id: str) -> Any:
        return by_id[article_id].published

    chosen: list[tuple[str, list[str]]] = []
    held: set[str] = set()
    kept: set[str] = set()
    for members in sorted(_stories(ctx, by_id), key=lambda m: (-len(m), m[0])):
        if len(chosen) >= p.publish_stories:
            break
        ordered = sorted(members, key=lambda m: (when(m), m))
        new, older = ordered[-1], ordered[:-1]
        if new in held or new in kept or any(o in held for o in older):
            continue
        chosen.append((new, older))
        held.add(new)
        kept.update(older)
    rest = sorted(
        (a for a in articles if a.id not in held and a.id not in kept and a.published),
        key=lambda a: (a.published, a.id),
    )
    extra = rest[-(p.publish_stream + p.publish_bulk) :] if rest else []
    return chosen, extra[: p.publish_stream], extra[p.publish_stream :]


def _body(article: Article) -> bytes:
    return orjson.dumps(article.model_dump(mode="json", exclude={"id"}))


def _ids_of(body: bytes) -> list[str]:
    return [item["id"] for item in orjson.loads(body)["items"]]


class Writer:
    """A keep-alive client with the write key. Every request it sends is idempotent (upserts,
    deletes, reads), so one that meets a connection the server closed while idle (uvicorn's
    keep-alive timeout) is sent once more on a new connection."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1" and parts.port is not None
        self.client = Client(parts.hostname, parts.port, WRITE_TIMEOUT_S)
        self.auth = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

    def send(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        try:
            return self.client.send(method, path, body, headers)
        except (ConnectionError, http.client.RemoteDisconnected):
            return self.client.send(method, path, body, headers)

    def put(self, article: Article) -> float:
        t0 = time.perf_counter()
        status, body = self.send("PUT", f"/articles/{article.id}", _body(article), self.auth)
        if status not in (200, 201):
            raise RuntimeError(f"PUT {article.id}: HTTP {status} {body[:300]!r}")
        return time.perf_counter() - t0

    def related(self, article_id: str, k: int) -> list[str]:
        status, body = self.send("GET", f"/articles/{article_id}/related?k={k}")
        if status != 200:
            raise RuntimeError(f"GET {article_id}: HTTP {status} {body[:300]!r}")
        return _ids_of(body)


def publish_stories(
    writer: Writer,
    chosen: list[tuple[str, list[str]]],
    by_id: dict[str, Article],
    k: int,
    wait: float,
) -> tuple[list[float], dict[tuple[str, str], float | None], int]:
    """PUT latencies, seconds to visible per (new, older) pair (None: not within `wait`), and
    how many pairs showed the new article on the first read after the PUT."""
    put_s: list[float] = []
    visible: dict[tuple[str, str], float | None] = {}
    first_read = 0
    for new, older in chosen:
        put_s.append(writer.put(by_id[new]))
        returned = time.perf_counter()
        pending = list(older)
        reads: dict[str, int] = defaultdict(int)
        while pending and time.perf_counter() - returned < wait:
            for o in list(pending):
                shown = new in writer.related(o, k)
                reads[o] += 1
                if shown:
                    visible[(new, o)] = time.perf_counter() - returned
                    first_read += reads[o] == 1
                    pending.remove(o)
            if pending:
                time.sleep(POLL_S)
        for o in pending:
            visible[(new, o)] = None
    return put_s, visible, first_read


def expected_pairs(
    ctx: RunContext, directory: Path, pairs: list[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Pairs whose older article's list, computed now (default parameters), holds the new one."""
    engine = Engine(directory, ctx.settings)
    try:
        q = RelatedQuery(k=ctx.settings.max_k)
        lists = {o: {i.article.id for i in engine.related(o, q)} for _, o in pairs}
    finally:
        engine.close()
    return {(n, o) for n, o in pairs if n in lists[o]}


def burst(
    ctx: RunContext, url: str, ids: Path, writer: Writer, stream: list[Article]
) -> dict[str, Any]:
    """Reads at `open_rate` for `burst_seconds` while one client PUTs `stream` articles."""
    p = ctx.profile
    command = [sys.executable, "-m", "benchmarks.loadgen", url, str(ids), "open"]
    command += ["--rate", str(p.open_rate), "--seconds", str(p.burst_seconds)]
    reader = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        put_s: list[float] = []
        started = time.perf_counter()
        for article in stream:
            if reader.poll() is not None:
                break
            put_s.append(writer.put(article))
        writing_s = time.perf_counter() - started
        out, err = reader.communicate(timeout=2 * p.burst_seconds + LOADGEN_GRACE_S)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    if reader.returncode != 0:
        raise RuntimeError(f"loadgen exited {reader.returncode}: {err.decode()[-2000:]}")
    return {
        "writes": len(put_s),
        "writing_s": round(writing_s, 2),
        "publish_rate_per_s": round(len(put_s) / writing_s, 2) if writing_s else 0.0,
        "ran_out_of_articles": len(put_s) == len(stream),
        "put_ms": latency_ms(put_s),
        "reads": orjson.loads(out.decode().strip().splitlines()[-1]),
    }


def bulk(writer: Writer, articles: list[Article]) -> dict[str, Any]:
    if not articles:
        return {"articles": 0}
    body = b"\n".join(orjson.dumps(a.model_dump(mode="json")) for a in articles)
    headers = writer.auth | {"Content-Type": "application/x-ndjson"}
    t0 = time.perf_counter()
    status, answer = writer.send("POST", "/articles", body, headers)
    seconds = time.perf_counter() - t0
    if status != 200:
        raise RuntimeError(f"POST /articles: HTTP {status} {answer[:300]!r}")
    return {
        "articles": len(articles),
        "seconds": round(seconds, 3),
        "articles_per_s": round(len(articles) / seconds, 2),
        "counts": orjson.loads(answer)["counts"],
    }


def unpublish(writer: Writer, shown: dict[str, list[str]], count: int, k: int) -> dict[str, Any]:
    """DELETE `count` published articles; read every list that showed one, once, right after."""
    delete_s, lists, gone = [], 0, 0
    for new, holders in list(shown.items())[:count]:
        t0 = time.perf_counter()
        status, body = writer.send("DELETE", f"/articles/{new}", None, writer.auth)
        delete_s.append(time.perf_counter() - t0)
        if status != 200:
            raise RuntimeError(f"DELETE {new}: HTTP {status} {body[:300]!r}")
        for o in holders:
            lists += 1
            gone += new not in writer.related(o, k)
        status, _ = writer.send("GET", f"/articles/{new}/related")
        lists += 1
        gone += status == 404
    return {
        "deleted": len(delete_s),
        "delete_ms": latency_ms(delete_s),
        "reads_after": lists,
        "gone_on_next_read": gone,
        "target_met": gone == lists,
    }


def run(ctx: RunContext) -> dict[str, Any]:
    p = ctx.profile
    articles = read_corpus_articles(ctx.data)
    by_id = {a.id: a for a in articles}
    chosen, stream, bulk_articles = hold_back(ctx, articles)
    held = {n for n, _ in chosen} | {a.id for a in stream} | {a.id for a in bulk_articles}
    data = ctx.scratch / "publish-input.jsonl"
    data.write_bytes(
        b"".join(
            orjson.dumps(a.model_dump(mode="json")) + b"\n" for a in articles if a.id not in held
        )
    )
    directory = ctx.scratch / "publish-index"
    encoder = ArticleEncoder.from_settings(ctx.settings)
    build_index(data, directory, encoder, ctx.settings, progress=False)
    ids = corpus_ids_file(ctx, directory, 50_000, "publish-ids.txt")
    k = ctx.settings.max_k
    env = {
        "RECOMMENDER_API_KEYS": KEY,
        "RECOMMENDER_CACHE_PATH": str(ctx.scratch / "publish-empty-cache.sqlite"),
    }
    log = ctx.scratch / "server-publish.log"
    with serve(directory, ctx.settings, log, workers=p.publish_workers, env=env) as server:
        warm_up(server, ids)
        writer = Writer(server.url)
        put_s, visible, first_read = publish_stories(writer, chosen, by_id, k, p.publish_wait_s)
        expected = expected_pairs(ctx, directory, list(visible))
        args = ["open", "--rate", str(p.open_rate), "--seconds", str(p.burst_seconds)]
        baseline = loadgen(server.url, ids, args, 2 * p.burst_seconds + LOADGEN_GRACE_S)
        during = burst(ctx, server.url, ids, writer, stream)
        bulked = bulk(writer, bulk_articles)
        shown: dict[str, list[str]] = defaultdict(list)
        for (n, o), seconds in visible.items():
            if seconds is not None:
                shown[n].append(o)
        deleted = unpublish(writer, shown, p.publish_deletes, k)
    times = [visible[pair] for pair in expected]
    found = [t for t in times if t is not None]
    missed = len(times) - len(found)
    p99 = latency_ms(found).get("p99") if found else None
    met = bool(times) and missed == 0 and p99 is not None and p99 / 1e3 <= TARGET_VISIBLE_P99_S
    return {
        "indexed": len(articles) - len(held),
        "workers": p.publish_workers,
        "stories": len(chosen),
        "pairs": len(visible),
        "pairs_expected": len(expected),
        "pairs_visible": sum(t is not None for t in visible.values()),
        "visible_on_first_read": first_read,
        "expected_missed": missed,
        "visible_ms": latency_ms(found),
        "put_ms": latency_ms(put_s),
        "target": f"new article in the expected older lists within {TARGET_VISIBLE_P99_S:g} s "
        "of the PUT returning, p99, none missed",
        "target_met": met if times else None,
        "reads_without_writes": baseline,
        "burst": during,
        "bulk": bulked,
        "unpublish": deleted,
    }
