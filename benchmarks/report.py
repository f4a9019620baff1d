"""The Markdown summary of a run (`<stem>.md`) and its copy as `latest.md`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

Doc = dict[str, Any]

SCALE_METHOD = (
    "Sizes up to the real corpus use real e5 vectors (a random subset). Larger sizes keep all "
    "real vectors and add derived ones: `normalize(v + sigma * n)`, `v` a random real vector, "
    "`n ~ N(0, C)` with `C` the covariance of the real vectors, so derived vectors vary in the "
    "directions real articles vary in (isotropic noise would leave the narrow cone e5 vectors "
    "occupy and make the index's job unrealistically hard). `sigma` is set so that the median "
    "cosine between a derived vector and its source equals the median nearest-neighbour cosine "
    "of the real corpus: a derived article is as close to its source as a real article is to "
    "its closest real story. The table shows the nearest-neighbour cosines this gives per size."
)


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _latency(r: Doc) -> list[str]:
    rows = [
        [
            f"{x['size']:,}",
            x["index"]["kind"],
            x["for_id_ms"]["p50"],
            x["for_id_ms"]["p95"],
            x["for_id_ms"]["p99"],
            x["search_only_ms"]["p50"],
            x["build_s"],
        ]
        for x in r["by_size"]
    ]
    s = r["scale"]
    scale_rows = [["real corpus", *s["real"].values()]] + [
        [f"{int(n):,}", *v.values()] for n, v in s["by_size"].items()
    ]
    h = r["hybrid_real_corpus"]
    rows.append(
        [
            f"{h['size']:,} (real, hybrid)",
            h["index"]["kind"],
            h["for_id_ms"]["p50"],
            h["for_id_ms"]["p95"],
            h["for_id_ms"]["p99"],
            h["search_only_ms"]["p50"],
            "-",
        ]
    )
    return [
        f"Target {r['target']}: **{_met(r['target_met'])}**. Rows by size: `method=dense`, "
        f"k={h['k']}, ranking pool {h['pool_size']} (the FAISS search asks for the pool); last "
        "row: the default hybrid ranking over the real corpus.",
        "",
        *table(
            ["articles", "index", "p50 ms", "p95 ms", "p99 ms", "search p50 ms", "build s"], rows
        ),
        "",
        f"Scaled data: {SCALE_METHOD} sigma = {s['sigma']} (target median cosine "
        f"{s['target_median_nn_cos']}, {s['real_articles']:,} real articles).",
        "",
        *table(["set", "NN cos p10", "NN cos p50", "NN cos p90"], scale_rows),
    ]


def _recall(r: Doc) -> list[str]:
    rec = r["recommendation"]
    largest = max(s["size"] for s in r["settings"])
    rows = [
        [
            s["kind"],
            s.get("m", "-"),
            s.get("ef_search", "-"),
            s["recall@10"],
            s["recall@10_p05"],
            s["search_ms"]["p50"],
            s["search_ms"]["p99"],
            s["pool_search_ms"]["p50"],
            s["build_s"],
            round(s["index_bytes"] / 2**20, 1),
        ]
        for s in r["settings"]
        if s["size"] == largest
    ]
    lines = [
        f"Recommended defaults: `hnsw_threshold={rec.get('hnsw_threshold')}`, "
        f"`hnsw_m={rec.get('hnsw_m')}`, `hnsw_ef_search={rec.get('hnsw_ef_search')}` "
        f"(ef_construction {rec.get('hnsw_ef_construction')}); current: `{rec.get('current')}`. "
        f"Recall@10 >= {rec.get('recall_target')}: **{_met(rec.get('target_met'))}**. "
        f"Threshold from the search the service makes (k = pool of {r['pool_size']}); at "
        f"k=10 the crossover would be {rec.get('hnsw_threshold_at_k10')}.",
        "",
        f"At {largest:,} articles ({r['queries_per_size']} queries, k={r['k']}):",
        "",
        *table(
            [
                "index",
                "M",
                "efSearch",
                "recall@10",
                "recall p05",
                "p50 ms",
                "p99 ms",
                "pool p50 ms",
                "build s",
                "MiB",
            ],
            rows,
        ),
    ]
    return lines


def _http(r: Doc) -> list[str]:
    runs = [(f"closed, {c['concurrency']} clients", c) for c in r["closed_loop"]]
    runs.append((f"open, {r['open_loop']['rate']:g} req/s", r["open_loop"]))
    rows = [
        [
            name,
            x["requests"],
            x["latency_ms"].get("p50"),
            x["latency_ms"].get("p95"),
            x["latency_ms"].get("p99"),
            x["throughput_rps"],
            x["errors"],
        ]
        for name, x in runs
    ]
    return [
        f"{r['endpoint']} on {r['size']:,} articles, {r['server']}; server peak RSS "
        f"{r['server_peak_rss_mib']} MiB. Every request asks for a different article "
        f"(so the API's response cache does not answer): {r['distinct_ids']}. "
        f"Target {r['target']}: **{_met(r['target_met'])}**.",
        "",
        *table(["load", "requests", "p50 ms", "p95 ms", "p99 ms", "req/s", "errors"], rows),
    ]


def _encoding(r: Doc) -> list[str]:
    rows = [
        [
            b["backend"],
            b["threads"],
            b["articles"],
            b["mean_tokens"],
            b["articles_per_s"],
            b["tokens_per_s"],
            b["single_ms"]["p50"],
            b["single_ms"]["p95"],
            b["peak_rss_mib"],
            b["limit_articles_per_s"],
            b["share_of_limit"],
        ]
        for b in r["backends"]
    ]
    return [
        f"Model: {r['architecture']}, {r['gflop_per_512_token_article']} GFLOP per 512-token "
        f"article; measured fp32 torch.matmul (1024x1024) GFLOP/s by threads: "
        f"{r['matmul_gflops_by_threads']} (default = {r['torch_threads']}). Limit = the best "
        "matmul rate / FLOPs per article.",
        "",
        *table(
            [
                "backend",
                "threads",
                "articles",
                "tokens/article",
                "articles/s",
                "tokens/s",
                "single p50 ms",
                "single p95 ms",
                "peak RSS MiB",
                "limit articles/s",
                "of limit",
            ],
            rows,
        ),
    ]


def _reindex(r: Doc) -> list[str]:
    s = r["seconds"]
    return [
        f"{r['articles']:,} articles ({r['rows']:,} rows), {r['cache']} embedding cache "
        f"({r['cached_texts_before']:,} of {r['unique_texts']:,} texts cached before the run): "
        f"read {s['read']} s, encode {s['encode']} s, index {s['index']} s, total "
        f"{r['total_s']} s ({r['articles_per_s']} articles/s). A cold encode runs at the "
        "`encoding` benchmark's articles/s.",
    ]


def _relevance(r: Doc) -> list[str]:
    if "skipped" in r:
        return [f"Skipped: {r['skipped']}"]
    lines = [
        f"{r['method']} on {r['queries_file']}:",
        "",
        "| method | nDCG@10 | recall@5 | recall@10 | recall@5 grade 3 | scored |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for method, m in r["methods"].items():
        lines.append(
            f"| {method} | {m['ndcg@10']} | {m['recall@5']} | {m['recall@10']} | "
            f"{m['recall@5_grade3']} | {m['scored']} of {m['queries']} |"
        )
    return lines


def _speedup(r: Doc) -> list[str]:
    d, ref = r["default"], r["reference"]
    t = r["targets"]
    lines = [
        f"Default backend `{d['backend']}` ({d['path']}; CPU: {d['cpu_features']}) against "
        f"`{ref['backend']}` ({ref['path']}), {r['articles']} real articles, {r['rounds']} "
        "interleaved rounds in one process:",
        "",
        f"- articles/s by round: fp32 {r['fp32_articles_per_s']}, default "
        f"{r['default_articles_per_s']}; ratio by round {r['ratio_by_round']}, median "
        f"**{r['ratio']}** (target >= 2: {_met(t['ratio>=2'])})",
        f"- cosine to fp32: min **{r['cosine_min']}**, mean {r['cosine_mean']} (target min >= "
        f"0.99: {_met(t['cosine_min>=0.99'])})",
        f"- single text (encode_one) p50: fp32 {r['single_ms']['fp32']['p50']} ms, default "
        f"{r['single_ms']['fast']['p50']} ms ({r['single_p50_ratio']}x)",
    ]
    if r.get("ndcg@10_delta"):
        n = r["ndcg@10"]
        lines.append(
            f"- nDCG@10 on the dev split, fp32 / default: dense {n['fp32']['dense']} / "
            f"{n['default']['dense']}, pipeline {n['fp32']['pipeline']} / "
            f"{n['default']['pipeline']}; delta {r['ndcg@10_delta']} (target within 0.005: "
            f"{_met(t['ndcg@10_within_0.005'])})"
        )
    return lines


def _ray(r: Doc) -> list[str]:
    rows = [
        [
            b["actors"],
            b["num_cpus"],
            b["fixed_s"],
            b["total_s"],
            b["articles_per_s"],
            b["steady_articles_per_s"],
        ]
        for b in r["by_actors"]
    ]
    return [
        f"{r['articles']} real articles, backend {r['backend']['backend']}, {r['cores']} cores. "
        f"Local path: {r['local_s']} s (before / after the Ray runs: "
        f"{r.get('local_s_before_after')}), {r['local_articles_per_s']} articles/s. Ray start "
        f"{r['ray_init_s']} s (once). Fixed = a 2-article run (planning, actor start, model "
        "load); steady = the rest of the articles over the rest of the time.",
        "",
        *table(
            ["actors", "CPUs each", "fixed s", "total s", "articles/s", "steady articles/s"], rows
        ),
        "",
        f"Best steady Ray rate / local rate: {r['best_steady_over_local']}; total Ray time / "
        f"local time by actors: {r['total_over_local_time']}.",
    ]


def _dirty(git: Doc) -> str:
    return " (uncommitted changes)" if git["dirty"] else ""


def _met(flag: bool | None) -> str:
    return "not measured" if flag is None else ("met" if flag else "NOT met")


SECTIONS: dict[str, tuple[str, Callable[[Doc], list[str]]]] = {
    "latency": ("Related-by-id latency (in process)", _latency),
    "recall": ("ANN recall@10 and index parameters", _recall),
    "http": ("HTTP under load", _http),
    "encoding": ("Encoding", _encoding),
    "reindex": ("Batch reindex", _reindex),
    "relevance": ("Relevance", _relevance),
    "speedup": ("Default encoder against fp32", _speedup),
    "ray": ("Ray Data against the local path", _ray),
}


def render(doc: Doc, plots: dict[str, str]) -> str:
    m, v, g = doc["machine"], doc["versions"], doc["git"]
    lines = [
        f"# Benchmarks {doc['started'][:19]}Z, commit {g['short']}{_dirty(g)}",
        "",
        f"`{' '.join(doc['command'])}` took {doc['duration_s']} s on {m['cpu_model']}, "
        f"{m['cores']} cores, {m['memory_gib']} GiB (load average {m['load_average']} at start, "
        f"{m.get('load_average_end')} at end: other work shares this machine). Python "
        f"{v['python']}, torch {v['torch']}, faiss {v['faiss-cpu']}, numpy {v['numpy']}, "
        f"sentence-transformers {v['sentence-transformers']}.",
    ]
    for name, (title, render_section) in SECTIONS.items():
        if name in doc["results"]:
            lines += ["", f"## {title}", "", *render_section(doc["results"][name])]
            if name in plots:
                lines += ["", f"![{title}]({plots[name]})"]
    for name, error in doc["errors"].items():
        lines += ["", f"## {name}: FAILED", "", "```", error.strip().splitlines()[-1], "```"]
    return "\n".join(lines) + "\n"


def write_reports(doc: Doc, directory: Path, stem: str, plots: dict[str, str]) -> None:
    text = render(doc, plots)
    (directory / f"{stem}.md").write_text(text)
    (directory / "latest.md").write_text(f"Latest run: [{stem}.json]({stem}.json)\n\n{text}")
