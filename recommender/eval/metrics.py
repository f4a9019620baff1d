"""Relevance metrics for related-article runs: nDCG@10 and recall over graded judgements.

Files are tab-separated with a header: a run (`query_id  doc_id  rank  score`), qrels
(`query_id  doc_id  grade`) and queries (a `query_id` column). Grades: 3 = the same story,
2 = the same event. nDCG uses the grade as the gain; recall counts grade >= 2. The query article
itself never counts, in the run or in the judgements. Recall at k is capped: hits in the top k
over min(k, number relevant), so a query with more relevant articles than k can still reach 1.0
(queries with 6-8 re-prints exist); `recall@10_uncapped` is reported too. Queries without any
grade >= 2 judgement cannot be scored and are skipped (their number is reported); recall@5 on
grade 3 is over the queries that have a grade-3 judgement.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

Run = dict[str, list[str]]
Qrels = dict[str, dict[str, int]]

RECALL_CUTS = (1, 5, 10, 50)
NDCG_CUT = 10
RELEVANT = 2
SAME_STORY = 3
HEADLINE = ("ndcg@10", "recall@5", "recall@10", "recall@5_grade3")


def _rows(path: Path) -> Iterable[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        yield from csv.DictReader(fh, delimiter="\t")


def read_run(path: Path) -> Run:
    """Doc ids per query, best first (ordered by `rank`)."""
    ranked: dict[str, list[tuple[int, str]]] = {}
    for row in _rows(path):
        ranked.setdefault(row["query_id"], []).append((int(row["rank"]), row["doc_id"]))
    return {q: [doc for _, doc in sorted(docs)] for q, docs in ranked.items()}


def write_run(path: Path, run: Mapping[str, Sequence[tuple[str, float]]]) -> None:
    """Write (doc_id, score) lists, best first, as a run TSV."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(["query_id", "doc_id", "rank", "score"])
        for query_id, docs in run.items():
            for rank, (doc_id, score) in enumerate(docs, start=1):
                writer.writerow([query_id, doc_id, rank, f"{score:.6f}"])


def read_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    for row in _rows(path):
        qrels.setdefault(row["query_id"], {})[row["doc_id"]] = int(row["grade"])
    return qrels


def read_queries(path: Path) -> list[str]:
    return [row["query_id"] for row in _rows(path)]


def _dcg(gains: Sequence[int]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg(ranked: Sequence[str], grades: Mapping[str, int], k: int = NDCG_CUT) -> float:
    ideal = _dcg(sorted(grades.values(), reverse=True)[:k])
    return _dcg([grades.get(d, 0) for d in ranked[:k]]) / ideal if ideal > 0 else 0.0


def recall(ranked: Sequence[str], relevant: set[str], k: int, capped: bool = True) -> float:
    """Share of `relevant` in the top k; capped: over min(k, len(relevant))."""
    if not relevant:
        return 0.0
    hits = len(relevant.intersection(ranked[:k]))
    return hits / (min(k, len(relevant)) if capped else len(relevant))


def evaluate(
    run: Mapping[str, Sequence[str]], qrels: Qrels, queries: Sequence[str]
) -> dict[str, float | int | str]:
    """Mean metrics over the queries that have a grade >= 2 judgement, plus query counts."""
    sums = {f"recall@{k}": 0.0 for k in RECALL_CUTS} | {
        "ndcg@10": 0.0,
        "recall@10_uncapped": 0.0,
        "recall@5_grade3": 0.0,
    }
    scored = scored_grade3 = 0
    for query_id in queries:
        grades = {d: g for d, g in qrels.get(query_id, {}).items() if d != query_id and g > 0}
        relevant = {d for d, g in grades.items() if g >= RELEVANT}
        if not relevant:
            continue
        ranked = [d for d in run.get(query_id, []) if d != query_id]
        scored += 1
        sums["ndcg@10"] += ndcg(ranked, grades)
        for k in RECALL_CUTS:
            sums[f"recall@{k}"] += recall(ranked, relevant, k)
        sums["recall@10_uncapped"] += recall(ranked, relevant, 10, capped=False)
        same_story = {d for d, g in grades.items() if g >= SAME_STORY}
        if same_story:
            scored_grade3 += 1
            sums["recall@5_grade3"] += recall(ranked, same_story, 5)
    result: dict[str, float | int | str] = {}
    for name, total in sums.items():
        count = scored_grade3 if name == "recall@5_grade3" else scored
        result[name] = total / count if count else 0.0
    skipped = len(queries) - scored
    result |= {
        "queries": len(queries),
        "scored": scored,
        "scored_grade3": scored_grade3,
        "skipped": skipped,
        "note": f"{skipped} of {len(queries)} queries have no grade>=2 judgement and are skipped",
    }
    return result


def evaluate_files(
    run_path: Path, qrels_path: Path, queries_path: Path
) -> dict[str, float | int | str]:
    return evaluate(read_run(run_path), read_qrels(qrels_path), read_queries(queries_path))


def compare(
    runs: Mapping[str, Mapping[str, float | int | str]], metrics: Sequence[str] = HEADLINE
) -> str:
    """A Markdown table: one row per run, one column per metric."""
    lines = [
        "| run | " + " | ".join(metrics) + " |",
        "| --- |" + " ---: |" * len(metrics),
    ]
    for name, result in runs.items():
        cells = [
            f"{v:.4f}" if isinstance(v, float) else str(v) for v in (result[m] for m in metrics)
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_chart(
    runs: Mapping[str, Mapping[str, float | int | str]],
    path: Path,
    metrics: Sequence[str] = HEADLINE,
) -> None:
    """A grouped bar chart (PNG) of `metrics` for each run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(runs)
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(metrics) + 0.4 * len(names)), 4.0))
    for i, name in enumerate(names):
        values = [float(runs[name][m]) for m in metrics]
        ax.bar([j + i * width for j in range(len(metrics))], values, width, label=name)
    ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(metrics))], list(metrics))
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel("score")
    ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
