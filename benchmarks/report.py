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


def _ms(x: Doc, *keys: str) -> list[Any]:
    return [x.get(k) for k in keys]


def _latency(r: Doc) -> list[str]:
    rows = [
        [
            f"{x['size']:,}",
            x["index"]["kind"],
            *_ms(x["read_ms"], "p50", "p99"),
            *_ms(x["dense_ms"], "p50", "p99"),
            x["search_only_ms"]["p50"],
            x["build_s"],
            x["load_s"],
        ]
        for x in r["by_size"]
    ]
    s = r["scale"]
    scale_rows = [["real corpus", *s["real"].values()]] + [
        [f"{int(n):,}", *v.values()] for n, v in s["by_size"].items()
    ]
    real = r["real_corpus"]
    param_rows = [
        ["website read (stored list)", "-", *_ms(real["read_ms"], "p50", "p95", "p99")],
        ["default, computed", "-", *_ms(real["default_computed_ms"], "p50", "p95", "p99")],
    ] + [
        [name, f"`{v['query']}`", *_ms(v["ms"], "p50", "p95", "p99")]
        for name, v in real["parameters"].items()
    ]
    return [
        f"Target {r['target']}: **{_met(r['target_met'])}**. Website read = "
        f"`stored_answer` (stored list, k={r['read_k']}, serialized as the API does) and its "
        "ETag; dense = `Engine.related(method=dense)`; search = the FAISS search of the dense "
        "path (own slot masked). Build = the generation with its stored lists; load = `Engine` "
        "start (mirror and vector index built from the store).",
        "",
        *table(
            [
                "articles",
                "index",
                "read p50 ms",
                "read p99 ms",
                "dense p50 ms",
                "dense p99 ms",
                "search p50 ms",
                "build s",
                "load s",
            ],
            rows,
        ),
        "",
        f"Real corpus ({real['size']:,} articles, {real['index']['kind']}), computed per "
        f"request. Target {real['target']}: **{_met(real['target_met'])}**"
        + (
            f"; {real['default_target']}: **{_met(real['default_target_met'])}**."
            if "default_target" in real
            else "."
        ),
        "",
        *table(["query", "parameters", "p50 ms", "p95 ms", "p99 ms"], param_rows),
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


def _load_row(name: str, x: Doc) -> list[Any]:
    if "skipped" in x:
        return [name, x["skipped"], "-", "-", "-", "-", "-"]
    lat = x["latency_ms"]
    return [
        name,
        x["requests"],
        lat.get("p50"),
        lat.get("p90", lat.get("p95")),
        lat.get("p99"),
        x["throughput_rps"],
        x["errors"],
    ]


def _http(r: Doc) -> list[str]:
    lines = [
        f"{r['endpoint']} on {r['articles']:,} articles, {r['server']}. Target {r['target']}: "
        f"**{_met(r['target_met'])}**.",
    ]
    for w in r["by_workers"]:
        rows = [_load_row(f"wrk, {w['wrk'].get('connections', '-')} connections", w["wrk"])]
        rows += [
            _load_row(f"suite, closed, {c['concurrency']} clients", c) for c in w["closed_loop"]
        ]
        rows.append(_load_row(f"suite, open, {w['open_loop']['rate']:g} req/s", w["open_loop"]))
        lines += [
            "",
            f"{w['workers']} worker(s), server peak RSS {w['server_peak_rss_mib']} MiB; wrk "
            f"target {_met(w['wrk_target_met'])}, open-loop target {_met(w['open_target_met'])}.",
            "",
            *table(["load", "requests", "p50 ms", "p90/p95 ms", "p99 ms", "req/s", "errors"], rows),
        ]
    return lines


def _publish(r: Doc) -> list[str]:
    b, bulk, u = r["burst"], r["bulk"], r["unpublish"]
    base, during = r["reads_without_writes"], b["reads"]
    return [
        f"{r['stories']} stories held back and PUT one by one into {r['indexed']:,} indexed "
        f"articles ({r['workers']} workers, empty embedding cache: every write is encoded). "
        f"Target {r['target']}: **{_met(r['target_met'])}**.",
        "",
        *table(
            ["measure", "value"],
            [
                [
                    "(new, older) pairs / expected (in a fresh list)",
                    f"{r['pairs']} / {r['pairs_expected']}",
                ],
                [
                    "visible / on the first read / expected but missed",
                    f"{r['pairs_visible']} / {r['visible_on_first_read']} / {r['expected_missed']}",
                ],
                [
                    "time to visible p50 / p99 / max ms",
                    " / ".join(str(v) for v in _ms(r["visible_ms"], "p50", "p99", "max")),
                ],
                ["PUT p50 / p99 ms", " / ".join(str(v) for v in _ms(r["put_ms"], "p50", "p99"))],
                [
                    "sustained publish rate (1 client, PUT, encoding)",
                    f"{b['publish_rate_per_s']} articles/s ({b['writes']} in {b['writing_s']} s)",
                ],
                [
                    "PUT during the burst p50 / p99 ms",
                    " / ".join(str(v) for v in _ms(b["put_ms"], "p50", "p99")),
                ],
                [
                    "bulk POST /articles",
                    f"{bulk.get('articles')} articles in {bulk.get('seconds')} s "
                    f"({bulk.get('articles_per_s')} articles/s)",
                ],
                [
                    "unpublish: reads gone on the next read",
                    f"{u['gone_on_next_read']} of {u['reads_after']} ({_met(u['target_met'])}); "
                    f"DELETE p50 {u['delete_ms'].get('p50')} ms",
                ],
            ],
        ),
        "",
        "Reads at the same open-loop rate, without and during the burst of writes:",
        "",
        *table(
            ["reads", "requests", "p50 ms", "p90/p95 ms", "p99 ms", "req/s", "errors"],
            [_load_row("without writes", base), _load_row("during writes", during)],
        ),
    ]


def _switch(r: Doc) -> list[str]:
    lines = [f"Target {r['target']}: **{_met(r['target_met'])}**."]
    for w in r["by_workers"]:
        rows = [
            [name, x["requests"], x["errors"], *_ms(x["latency_ms"], "p50", "p99", "max")]
            for name, x in w["windows"].items()
        ]
        lines += [
            "",
            f"{w['workers']} worker(s): build {w['build_s']} s, switch "
            f"{w['switch_after_build_start_s']} s after it started; {w['generation_before']} "
            f"-> {w['generation_after']}, served after: {w['served_after']}, old generation "
            f"removed: {w['old_removed']}; {w['reads']['requests']} reads, "
            f"{w['reads']['errors']} failed {w['reads']['error_kinds'] or ''}.",
            "",
            *table(["window", "requests", "errors", "p50 ms", "p99 ms", "max ms"], rows),
        ]
    return lines


def _soak(r: Doc) -> list[str]:
    m, w = r["memory"], r["writes"]
    rows = [
        _load_row(name, x | {"throughput_rps": round(x["requests"] / r["seconds"], 1)})
        for name, x in (
            ("all reads", r["reads"]),
            ("after warm-up", r["reads_after_warmup"]),
            ("JSON list", r["reads_json"]),
            ("HTML box", r["reads_html"]),
        )
    ]
    write_rows = [
        [kind, k["count"], k["errors"], *_ms(k["latency_ms"], "p50", "p99", "max")]
        for kind, k in w["by_kind"].items()
    ]
    return [
        f"{r['seconds']} s against `recommender serve --workers {r['workers']}` over "
        f"{r['articles']:,} articles: reads at {r['rate']:g} req/s (open loop, "
        f"{r['html_share']:.0%} HTML box), {w['count']} writes at {r['writes_per_min']:g} a "
        f"minute (publish, correct, unpublish; every one encoded). Target {r['target']}: errors "
        f"**{_met(r['errors_target_met'])}**, memory **{_met(m['target_met'])}**, p99 "
        f"**{_met(r['p99_target_met'])}**.",
        "",
        *table(["reads", "requests", "p50 ms", "p90/p95 ms", "p99 ms", "req/s", "errors"], rows),
        "",
        *table(["writes", "count", "errors", "p50 ms", "p99 ms", "max ms"], write_rows),
        "",
        f"Memory ({', '.join(m['processes'])}: VmRSS summed): {m['first_window_mib']} MiB in the "
        f"first {m['window_s']:g} s after warm-up, {m['last_window_mib']} MiB in the last "
        f"(growth {m['growth']:.2%}; slope after warm-up {m['slope_mib_per_min']} MiB/min; peak "
        f"{m['peak_mib']} MiB). `/metrics` scraped {r['metrics_scrapes']} times: list-refresh "
        f"lag at most {r['list_refresh_lag_s_max']} s, log lag at most "
        f"{r['log_lag_changes_max']} changes.",
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
        f"{r['total_s']} s ({r['articles_per_s']} articles/s; index = the generation with "
        "every stored list computed). A cold encode runs at the `encoding` benchmark's "
        "articles/s.",
    ]


def _relevance(r: Doc) -> list[str]:
    if "skipped" in r:
        return [f"Skipped: {r['skipped']}"]
    lines = [
        f"{r['method']} on {r['queries_file']}. Target {r['target']}: **{_met(r['target_met'])}**.",
        "",
        "| method | nDCG@10 | recall@5 | recall@10 | recall@5 grade 3 | scored |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for method, m in r["methods"].items():
        lines.append(
            f"| {method} | {m['ndcg@10']} | {m['recall@5']} | {m['recall@10']} | "
            f"{m['recall@5_grade3']} | {m['scored']} of {m['queries']} |"
        )
    story = r.get("story_ruler")
    if story:
        lines += _story_ruler(story)
    return lines


RULER_COLUMNS = (
    ("happening_recall@5", "story recall@5"),
    ("useful_distinct@5", "useful distinct@5"),
    ("copies@5", "copies"),
    ("filler@5", "filler"),
    ("judged_p@5", "judged P@5"),
    ("happening_alpha_ndcg@10", "happening α-nDCG@10"),
    ("unjudged@5", "unjudged@5"),
)


def _compared(c: Doc) -> str:
    return (
        f"- {c['run']} vs {c['baseline']}, {c['metric']}: {c['value']:.4f} vs "
        f"{c['baseline_value']:.4f} ({c['delta']:+.4f}, p={c['p_value']:.4f}"
        f"{', significant' if c['significant'] else ''}; {c['improved']} better, "
        f"{c['worse']} worse)"
    )


def _story_ruler(story: Doc) -> list[str]:
    learned = story["learned"]
    head = "| list | " + " | ".join(n for _, n in RULER_COLUMNS) + " |"
    lines: list[str] = []
    for ruler, methods in story["methods"].items():
        target = " (the targets' ruler)" if ruler == learned["targets_ruler"] else ""
        lines += [
            "",
            f"Story ruler {ruler}{target}; `stored` is the box: the stored lists' top 5; learned "
            "lists are out of fold, 5 folds by query:",
            "",
            head,
            "| --- |" + " ---: |" * len(RULER_COLUMNS),
        ]
        for name, m in (methods | learned["rulers"][ruler]).items():
            lines.append(f"| {name} | " + " | ".join(str(m[k]) for k, _ in RULER_COLUMNS) + " |")
        lines += ["", f"Paired randomization tests on {ruler} (difference to the hand fusion):", ""]
        lines += [_compared(c) for c in learned["compare_rulers"][ruler]]
    lines += ["", "On the heuristic qrels:", ""]
    lines += [_compared(c) for c in learned["compare_heuristic"]]
    h = learned["heuristic"]
    oof = learned["card"]["out_of_fold"]
    rule = learned["card"]["copy_rule"]
    cost = learned["cost"]
    lines += [
        "",
        f"Learned ranked list on the heuristic qrels: nDCG@10 {h['ndcg@10']}, recall@10 "
        f"{h['recall@10']}, recall@5 {h['recall@5']}.",
        f"Own happening (out of fold): precision {oof['own']['precision']:.3f}, recall "
        f"{oof['own']['recall']:.3f}; same happening over pairs of judged grade-2/3 items of one "
        f"query: precision {oof['pair']['precision']:.3f}, recall {oof['pair']['recall']:.3f} "
        f"(the copy rule alone: {rule['precision']:.3f} / {rule['recall']:.3f}).",
        f"Cost per stored list ({cost['k']} items, {cost['articles']} articles, interleaved): "
        f"hand p50 {cost['hand_ms_p50']} ms, learned + grouping p50 {cost['learned_ms_p50']} "
        f"ms; extra p50 {cost['extra_ms_p50']} ms, mean {cost['extra_ms_mean']} ms.",
        "",
        "Targets (issue 15):",
        "",
    ]
    lines += [f"- {name}: **{_met(ok)}**" for name, ok in learned["targets"].items()]
    return lines


def _box_cells(box: Doc | None) -> str:
    if not box:
        return "- | - | - | -"
    vs = box.get("vs_512")
    test = f"{vs['delta']:+.2f}, p={vs['p_value']}" if vs else "reference"
    no_worse = "yes" if box["no_worse_than_512"] else "**no**"
    return (
        f"{box['happening_recall@5']} | {box['copies@5']} | {box['useful_distinct@5']} "
        f"({test}) | {no_worse}"
    )


def _speedup(r: Doc) -> list[str]:
    t = r["targets"]
    names = list(r["machines"])
    lines = []
    for name, m in r["machines"].items():
        ref = m["reference"]
        lines.append(
            f"- `{name}` (torch {m['torch_cpu_capability']}, caps {m['isa_caps'] or 'none'}; "
            f"CPU features {ref['cpu_features']}): reference `{ref['backend']}` ({ref['path']}) "
            f"at {ref['budget']}, {m['reference_articles_per_s']} articles/s by round; "
            f"{m['articles']} real articles, {m['rounds']} interleaved rounds in one process"
        )
    avx2 = r.get("avx2_class", {})
    if avx2.get("machine"):
        how = "emulated, not measured on an AVX2 CPU" if avx2["emulated"] else "measured"
        lines.append(f"- AVX2-class figures: `{avx2['machine']}` ({how})")
    if "avx2-emulated" not in names:
        lines.append("- no AVX2 emulation: this CPU has no AVX-512, so `native` is the AVX2 class")
    box = r.get("box", {})
    lines.append(
        f"- box: {box['skipped']}"
        if "skipped" in box
        else f"- box: the stored lists' top 5 on {box['ruler']} ({box['ruled_queries']} ruled "
        f"queries); {box['rule']}"
    )
    head = " | ".join(f"{n}: backend, ratio (by round)" for n in names)
    single = " / ".join(names)
    lines += [
        "",
        f"| budget | {head} | cosine min / mean to fp32@512 (native) | single p50 ms {single} "
        "| dev nDCG@10 dense / pipeline | box story recall@5 | copies@5 "
        "| useful distinct@5 (vs 512) | box no worse |",
        "| ---: |" + " --- |" * len(names) + " ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in r["by_budget"]:
        rel = row["ndcg@10"] or {}
        n = row["native"]
        mark = " (default)" if row["budget"] == r["default_budget"] else ""
        speeds = " | ".join(
            f"{row[x]['backend']} {row[x]['ratio']}x {row[x].get('ratio_by_round', '')}"
            for x in names
        )
        singles = " / ".join(str(row[x]["single_p50_ms"]) for x in names)
        lines.append(
            f"| {row['budget']}{mark} | {speeds} | {n['cosine_min']} / "
            f"{n.get('cosine_mean', '-')} | {singles} "
            f"| {rel.get('dense', '-')} / {rel.get('pipeline', '-')} "
            f"| {_box_cells(row.get('box'))} |"
        )
    lines.append("")
    lines.append(
        f"Budget by issue 17's rule (cheapest with pipeline nDCG@10 within 0.005 of 512's and a "
        f"box no worse): {r.get('budget_by_rule') or 'not measured'}; configured default: "
        f"{r['default_budget']}."
    )
    for c in r["int8"]:
        lines.append(
            f"\nint8 path `{c['name']}` ({c['encoder']['path']}): {c['ratio']}x "
            f"{c['ratio_by_round']}, cosine min {c['cosine_min']} / mean {c['cosine_mean']}, "
            f"single p50 {c['single_ms']['p50']} ms"
        )
    lines += ["", "Targets (at the configured default budget):", ""]
    lines += [f"- {k}: **{_met(v)}**" for k, v in t.items()]
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
    "latency": ("Related lists in process", _latency),
    "recall": ("ANN recall@10 and index parameters", _recall),
    "http": ("Website read over HTTP", _http),
    "publish": ("Publish and unpublish", _publish),
    "switch": ("Reindex and switch under load", _switch),
    "soak": ("Soak: reads and writes for minutes", _soak),
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
