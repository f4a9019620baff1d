"""Relevance metrics of related-article runs over graded judgements, per query and on average.

nDCG@10 (the grade as the gain), uncapped recall, α-nDCG@10 and story recall come from
ir-measures (trec_eval and TREC's ndeval underneath); recall at k is the project's own, capped:
hits in the top k over min(k, number relevant), so a query with more relevant articles than k
(queries with 6-8 re-prints exist) can still reach 1.0 — no library has it. Recall counts
grade >= 2. The query article itself never counts, in the run or in the judgements; the order of
a run is its rank, never its score (the final stage's fallback items score below later ones).

Queries without any grade >= 2 judgement cannot be scored and are skipped (their number is
reported); recall@5 on grade 3 is over the queries with a grade-3 judgement.

Novelty, for the box a reader sees: the final stage collapses copies of one story, which
precision-style metrics punish. Stories come from the judgements: articles judged the same story
(grade 3) anywhere in the qrels are one story (connected pairs, transitively). For each query,
every relevant article other than copies of the query's own story belongs to one story, and
α-nDCG@10 (Clarke et al., 2008; α = 0.5) gives a story's first article full gain and each
further copy half the gain of the one before; `story_recall@10` is the share of those stories in
the top 10. Copies of the query's own story count for nothing there (a re-print of the article
being read tells the reader nothing new); queries left without any story are not scored on these
two (`scored_novelty` counts the rest).

The box's ruler, where the judgements carry `happening` labels (`files.Judgements`; a query is
ruled when a file with that column judged it, and is scored on these even without a grade-2
judgement): over the top 5 of a run, with H the query's happenings (the distinct labels of its
grade-2 judgements),
- `useful_distinct@5`: distinct happenings among the grade-2 items (grade 3, the article's own
  happening, counts nothing; two reports of one happening count once); its ceiling is
  min(5, |H|);
- `happening_recall@5` ("story recall@5"): `useful_distinct@5` / min(5, |H|), over the queries
  with a happening;
- `copies@5`: grade-3 items (reports of the article's own happening); `filler@5`: items judged
  1 or 0; `unjudged@5`: items without a judgement; `judged@5`: the judged share of the top 5;
- `judged_p@5`: the share of grade >= 2 among the judged items of the top 5 (unjudged ones
  left out, not counted as misses), over the queries with a judged item there;
- `happening_alpha_ndcg@10`: α-nDCG@10 (α = 0.5, TREC's ndeval) with the happenings as
  subtopics and the grade-2 items as their relevant documents: the first report of a happening
  earns full gain, each further one half the one before, grade 3 nothing.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import ir_measures
from ir_measures import Judged, Measure, R, StRecall, alpha_nDCG, nDCG

from recommender.eval.files import Qrels, happenings_of

RECALL_CUTS = (1, 5, 10, 50)
RELEVANT = 2
SAME_STORY = 3
HEADLINE = ("ndcg@10", "recall@5", "recall@10", "recall@5_grade3")
NOVELTY = ("alpha_ndcg@10", "story_recall@10")
BOX_DEPTH = 5
RULER = (
    "happening_recall@5",
    "useful_distinct@5",
    "copies@5",
    "filler@5",
    "judged_p@5",
    "happening_alpha_ndcg@10",
    "judged@5",
    "unjudged@5",
)
COUNTS = ("useful_distinct@5", "copies@5", "filler@5", "unjudged@5")
SHARES = tuple(m for m in (*HEADLINE, *NOVELTY, *RULER) if m not in COUNTS)
"""The metrics between 0 and 1 (the rest are counts of items in the top 5)."""
HAPPENINGS: dict[Measure, str] = {alpha_nDCG(alpha=0.5) @ 10: "happening_alpha_ndcg@10"}
GRADED: dict[Measure, str] = {
    nDCG @ 10: "ndcg@10",
    R(rel=RELEVANT) @ 10: "recall@10_uncapped",
    Judged @ 10: "judged@10",
}
STORIES: dict[Measure, str] = {
    alpha_nDCG(alpha=0.5) @ 10: "alpha_ndcg@10",
    StRecall @ 10: "story_recall@10",
}
PerQuery = dict[str, dict[str, float]]


def recall(ranked: Sequence[str], relevant: set[str], k: int, capped: bool = True) -> float:
    """Share of `relevant` in the top k; capped: over min(k, len(relevant))."""
    if not relevant:
        return 0.0
    hits = len(relevant.intersection(ranked[:k]))
    return hits / (min(k, len(relevant)) if capped else len(relevant))


def stories(qrels: Qrels) -> dict[str, str]:
    """Each article's story: articles linked by grade-3 judgements, transitively, are one."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for query_id, grades in qrels.items():
        for doc_id, grade in grades.items():
            find(doc_id)
            if grade >= SAME_STORY and doc_id != query_id:
                a, b = find(query_id), find(doc_id)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return {x: find(x) for x in list(parent)}


def _judged(qrels: Qrels, query_id: str) -> dict[str, int]:
    return {d: g for d, g in qrels.get(query_id, {}).items() if d != query_id}


def scorable(qrels: Qrels, queries: Sequence[str]) -> list[str]:
    """The queries with at least one grade >= 2 judgement (other than themselves)."""
    return [q for q in queries if any(g >= RELEVANT for g in _judged(qrels, q).values())]


def box_metrics(
    ranked: Sequence[str], grades: Mapping[str, int], labels: Mapping[str, str]
) -> dict[str, float]:
    """The ruler's counts over the top 5 of `ranked` (the query itself left out by the caller):
    `grades` the query's judgements, `labels` the happening of its labelled grade-2 items."""
    top = list(ranked[:BOX_DEPTH])
    judged = [d for d in top if d in grades]
    useful = {labels[d] for d in judged if grades[d] == RELEVANT and d in labels}
    happenings = {labels[d] for d, g in grades.items() if g == RELEVANT and d in labels}
    row = {
        "useful_distinct@5": float(len(useful)),
        "copies@5": float(sum(grades[d] >= SAME_STORY for d in judged)),
        "filler@5": float(sum(grades[d] < RELEVANT for d in judged)),
        "unjudged@5": float(len(top) - len(judged)),
        "judged@5": len(judged) / BOX_DEPTH,
    }
    if happenings:
        row["happening_recall@5"] = len(useful) / min(BOX_DEPTH, len(happenings))
    if judged:
        row["judged_p@5"] = sum(grades[d] >= RELEVANT for d in judged) / len(judged)
    return row


def _library_scores(measures: Mapping[Measure, str], qrels: object, run: object) -> PerQuery:
    values: PerQuery = {}
    with contextlib.redirect_stderr(io.StringIO()):  # ndeval's advice on TREC files, not ours
        for m in ir_measures.iter_calc(list(measures), qrels, run):
            values.setdefault(m.query_id, {})[measures[m.measure]] = float(m.value)
    return values


def per_query(run: Mapping[str, Sequence[str]], qrels: Qrels, queries: Sequence[str]) -> PerQuery:
    """Every metric of every scorable query (novelty ones only where the query has a story),
    and the ruler's of every ruled query (happening-labelled judgements)."""
    scored = scorable(qrels, queries)
    labels, ruled = happenings_of(qrels)
    ruled_queries = [q for q in queries if q in ruled]
    # ir-measures orders by score: rank order as descending scores keeps the run's order
    lib_run = {
        q: {d: float(len(docs) - i) for i, d in enumerate(docs)}
        for q in dict.fromkeys([*scored, *ruled_queries])
        if (docs := [d for d in dict.fromkeys(run.get(q, [])) if d != q])
    }
    graded = {q: {d: g for d, g in _judged(qrels, q).items()} for q in scored}
    values = _library_scores(GRADED, graded, lib_run)
    story_of = stories(qrels)
    story_qrels = [
        ir_measures.Qrel(q, d, 1, story_of[d])
        for q in scored
        for d, g in _judged(qrels, q).items()
        if g >= RELEVANT and story_of[d] != story_of.get(q, q)
    ]
    novelty = _library_scores(STORIES, story_qrels, lib_run) if story_qrels else {}
    with_story = {qr.query_id for qr in story_qrels}
    happening_qrels = [
        ir_measures.Qrel(q, d, 1, label)
        for q in ruled_queries
        for d, label in labels.get(q, {}).items()
        if d != q and qrels[q].get(d) == RELEVANT
    ]
    by_happening = _library_scores(HAPPENINGS, happening_qrels, lib_run) if happening_qrels else {}
    with_happening = {qr.query_id for qr in happening_qrels}
    result: PerQuery = {}
    for q in scored:
        ranked = [d for d in run.get(q, []) if d != q]
        grades = _judged(qrels, q)
        relevant = {d for d, g in grades.items() if g >= RELEVANT}
        row = {name: values.get(q, {}).get(name, 0.0) for name in GRADED.values()}
        row |= {f"recall@{k}": recall(ranked, relevant, k) for k in RECALL_CUTS}
        same_story = {d for d, g in grades.items() if g >= SAME_STORY}
        if same_story:
            row["recall@5_grade3"] = recall(ranked, same_story, 5)
        if q in with_story:
            row |= {name: novelty.get(q, {}).get(name, 0.0) for name in STORIES.values()}
        result[q] = row
    for q in ruled_queries:
        ranked = [d for d in dict.fromkeys(run.get(q, [])) if d != q]
        row = result.setdefault(q, {})
        row |= box_metrics(ranked, _judged(qrels, q), labels.get(q, {}))
        if q in with_happening:
            row |= {n: by_happening.get(q, {}).get(n, 0.0) for n in HAPPENINGS.values()}
    return result


def summarize(values: PerQuery, total: int) -> dict[str, float | int | str]:
    """Means of per-query metrics (each over the queries that have it), plus query counts out
    of `total` queries asked."""
    names = [*GRADED.values(), *(f"recall@{k}" for k in RECALL_CUTS), "recall@5_grade3"]
    names += [*STORIES.values(), *RULER]
    result: dict[str, float | int | str] = {}
    for name in names:
        have = [row[name] for row in values.values() if name in row]
        result[name] = sum(have) / len(have) if have else 0.0
    scored = sum("ndcg@10" in row for row in values.values())
    skipped = total - scored
    result |= {
        "queries": total,
        "scored": scored,
        "scored_ruler": sum("useful_distinct@5" in row for row in values.values()),
        "scored_grade3": sum("recall@5_grade3" in row for row in values.values()),
        "scored_novelty": sum("alpha_ndcg@10" in row for row in values.values()),
        "skipped": skipped,
        "note": f"{skipped} of {total} queries have no grade>=2 judgement and are skipped",
    }
    return result


def evaluate(
    run: Mapping[str, Sequence[str]], qrels: Qrels, queries: Sequence[str]
) -> dict[str, float | int | str]:
    """Mean metrics over the queries that have a grade >= 2 judgement, plus query counts."""
    return summarize(per_query(run, qrels, queries), len(queries))


def markdown_table(
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


def chart_png(
    runs: Mapping[str, Mapping[str, float | int | str]], metrics: Sequence[str] = HEADLINE
) -> bytes:
    """A grouped bar chart of `metrics` for each run, as PNG bytes."""
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
    ax.legend(
        fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(len(names), 5)
    )
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def write_chart(
    runs: Mapping[str, Mapping[str, float | int | str]],
    path: Path,
    metrics: Sequence[str] = HEADLINE,
) -> None:
    """The grouped bar chart of `metrics` for each run, as a PNG file."""
    path.write_bytes(chart_png(runs, metrics))
