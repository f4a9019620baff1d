"""PNG charts of a results document (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

Doc = dict[str, Any]


def _latency(ax: Axes, r: Doc) -> None:
    rows = r["by_size"]
    sizes = [x["size"] for x in rows]
    for p in ("p50", "p99"):
        ax.plot(sizes, [x["read_ms"][p] for x in rows], marker="o", label=f"website read {p}")
        ax.plot(sizes, [x["dense_ms"][p] for x in rows], marker="s", ls=":", label=f"dense {p}")
    ax.plot(sizes, [x["search_only_ms"]["p50"] for x in rows], "k--", label="FAISS search p50")
    ax.axhline(0.2, color="red", lw=0.8, label="target read p99 at 100k")
    ax.set(xscale="log", yscale="log", xlabel="articles", ylabel="ms")
    ax.set_title("Related lists in process: stored (read) and computed (dense)")


def _recall(ax: Axes, r: Doc) -> None:
    for size in sorted({s["size"] for s in r["settings"]}):
        for m in sorted({s.get("m", 0) for s in r["settings"] if s["kind"] == "hnsw"}):
            pts = [s for s in r["settings"] if s["size"] == size and s.get("m") == m]
            ax.plot(
                [s["search_ms"]["p50"] for s in pts],
                [s["recall@10"] for s in pts],
                marker="o",
                label=f"{size:,} M={m}",
            )
        flat = [s for s in r["settings"] if s["size"] == size and s["kind"] == "flat"]
        ax.scatter([s["search_ms"]["p50"] for s in flat], [1.0] * len(flat), marker="s", c="k")
    ax.axhline(0.99, color="red", lw=0.8)
    ax.set(xscale="log", xlabel="search p50 ms (squares: flat)", ylabel="recall@10")
    ax.set_title("HNSW recall vs latency (efSearch along each line)")
    ax.legend(fontsize="x-small", ncol=2)


def _http(ax: Axes, r: Doc) -> None:
    runs = []
    for w in r["by_workers"]:
        if "skipped" not in w["wrk"]:
            runs.append((f"wrk {w['wrk']['connections']}c\n{w['workers']}w", w["wrk"]))
        runs += [(f"{c['concurrency']} cl\n{w['workers']}w", c) for c in w["closed_loop"]]
        runs.append((f"{w['open_loop']['rate']:g}/s open\n{w['workers']}w", w["open_loop"]))
    for i, p in enumerate(("p50", "p99")):
        ax.bar(
            [j + i * 0.4 for j in range(len(runs))],
            [max(x["latency_ms"].get(p, 0), 1e-3) for _, x in runs],
            0.4,
            label=p,
        )
    ax.set_xticks([j + 0.2 for j in range(len(runs))], [name for name, _ in runs], fontsize=7)
    ax.axhline(10.0, color="red", lw=0.8, label="open-loop target p99")
    ax.axhline(20.0, color="orange", lw=0.8, label="wrk target p99")
    ax.set(ylabel="ms", yscale="log")
    ax.set_title(f"GET /articles/{{id}}/related (stored list), {r['articles']:,} articles")


def _switch(ax: Axes, r: Doc) -> None:
    names = ["before_build", "during_build", "around_switch", "after_build"]
    for i, w in enumerate(r["by_workers"]):
        windows = w["windows"]
        present = [n for n in names if n in windows]
        ax.bar(
            [j + i * 0.4 for j in range(len(present))],
            [max(windows[n]["latency_ms"].get("p99", 0), 1e-3) for n in present],
            0.4,
            label=f"{w['workers']} worker(s) p99",
        )
        ax.set_xticks([j + 0.2 for j in range(len(present))], present)
    ax.axhline(10.0, color="red", lw=0.8, label="200 req/s target p99")
    ax.set(ylabel="ms", yscale="log")
    ax.set_title(f"Reads at {r['rate']:g} req/s through a rebuild and switch")


def _soak(ax: Axes, r: Doc) -> None:
    windows = [w for w in r["windows"] if w["p99_ms"] is not None]
    minutes = [w["t_s"] / 60 for w in windows]
    ax.plot(minutes, [w["p50_ms"] for w in windows], color="tab:blue", label="read p50 (10 s)")
    ax.plot(minutes, [w["p99_ms"] for w in windows], color="tab:orange", label="read p99 (10 s)")
    failed = [w for w in r["windows"] if w["errors"]]
    if failed:
        ax.scatter([w["t_s"] / 60 for w in failed], [1.0] * len(failed), c="red", label="errors")
    ax.axhline(10.0, color="red", lw=0.8, label="p99 target")
    ax.axvline(r["warmup_s"] / 60, color="grey", ls=":", lw=0.8, label="end of warm-up")
    writes = r["write_times_s"]
    ax.plot([t / 60 for t in writes], [0.12] * len(writes), "|", color="black", label="writes")
    ax.set(xlabel="minutes", ylabel="ms", yscale="log", ylim=(0.1, None))
    memory = ax.twinx()
    series = r["memory"]["series"]
    memory.plot(
        [s["t_s"] / 60 for s in series],
        [sum(s["mib"]) for s in series],
        color="tab:green",
        label="server RSS, all processes",
    )
    for i in range(len(r["memory"]["processes"])):
        memory.plot(
            [s["t_s"] / 60 for s in series],
            [s["mib"][i] for s in series],
            color="tab:green",
            lw=0.6,
            ls="--",
            label="each process" if i == 0 else None,
        )
    memory.set(ylabel="MiB", ylim=(0, None))
    lines, labels = ax.get_legend_handles_labels()
    more, more_labels = memory.get_legend_handles_labels()
    ax.legend(lines + more, labels + more_labels, fontsize="x-small", loc="center right")
    ax.set_title(
        f"Soak: {r['rate']:g} req/s JSON + HTML, {r['writes_per_min']:g} writes/min, "
        f"{r['workers']} workers"
    )


def _encoding(ax: Axes, r: Doc) -> None:
    names = [f"{b['backend']}\n{b['threads']} threads" for b in r["backends"]]
    ax.bar(
        [i - 0.2 for i in range(len(names))],
        [b["articles_per_s"] for b in r["backends"]],
        0.4,
        label="measured",
    )
    ax.bar(
        [i + 0.2 for i in range(len(names))],
        [b["limit_articles_per_s"] for b in r["backends"]],
        0.4,
        label="matmul limit",
    )
    ax.set_xticks(range(len(names)), names)
    ax.set(ylabel="articles/s")
    ax.set_title(f"Encoding throughput (fp32 matmul {r['matmul_gflops_fp32']} GFLOP/s)")


def _reindex(ax: Axes, r: Doc) -> None:
    left = 0.0
    for part, seconds in r["seconds"].items():
        ax.barh([0], [seconds], left=left, label=f"{part} {seconds} s")
        left += seconds
    ax.set(yticks=[], xlabel="seconds")
    ax.set_title(f"Reindex {r['articles']:,} articles ({r['cache']} embedding cache)")


def _ray(ax: Axes, r: Doc) -> None:
    actors = [b["actors"] for b in r["by_actors"]]
    ax.plot(actors, [b["steady_articles_per_s"] for b in r["by_actors"]], "o-", label="Ray steady")
    ax.plot(actors, [b["articles_per_s"] for b in r["by_actors"]], "s--", label="Ray with start")
    ax.axhline(r["local_articles_per_s"], color="grey", linestyle=":", label="local path")
    ax.set(xlabel="encoder actors", ylabel="articles/s", xticks=actors)
    ax.set_title(f"Ray Data on one machine ({r['cores']} cores, {r['articles']} articles)")


CHARTS: dict[str, Callable[[Axes, Doc], None]] = {
    "latency": _latency,
    "recall": _recall,
    "http": _http,
    "switch": _switch,
    "soak": _soak,
    "encoding": _encoding,
    "reindex": _reindex,
    "ray": _ray,
}


def write_plots(doc: Doc, directory: Path, stem: str) -> dict[str, str]:
    """One PNG per benchmark that has a chart and a result; file names by benchmark."""
    written = {}
    for name, draw in CHARTS.items():
        if name not in doc["results"]:
            continue
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        draw(ax, doc["results"][name])
        if ax.get_legend_handles_labels()[0] and ax.get_legend() is None:
            ax.legend(fontsize="small")
        fig.tight_layout()
        path = directory / f"{stem}-{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written[name] = path.name
    return written
