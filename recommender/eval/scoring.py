"""The bench's operations as functions returning plain records (lists of dicts), which
`pandas.DataFrame(...)` takes as they are; the command line calls the same functions.

    from recommender.eval import load_qrels, score, compare
    qrels = load_qrels("qrels.tsv", "pool-judged.csv")
    pd.DataFrame(score({"dense": "dense.tsv", "pipeline": "pipeline.tsv"}, qrels))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from recommender.eval import metrics, significance
from recommender.eval.files import Qrels, Record, RunItem, doc_ids, load_run
from recommender.eval.significance import Test

RunLike = Path | str | Mapping[str, Sequence[RunItem]] | Mapping[str, Sequence[str]]
COMPARED = (*metrics.HEADLINE, *metrics.NOVELTY)


def compared_metrics(values: Mapping[str, metrics.PerQuery]) -> tuple[str, ...]:
    """The metrics to show and compare: the ruler's too when some query is ruled."""
    ruled = any("useful_distinct@5" in row for rows in values.values() for row in rows.values())
    return (*COMPARED, *metrics.RULER) if ruled else COMPARED


def ranked_ids(run: RunLike) -> dict[str, list[str]]:
    """A run file, a loaded run or doc-id lists, as doc-id lists per query."""
    if isinstance(run, Path | str):
        return doc_ids(load_run(Path(run)))
    return {
        q: [it.doc_id if isinstance(it, RunItem) else str(it) for it in items]
        for q, items in run.items()
    }


def per_query_values(
    runs: Mapping[str, RunLike], qrels: Qrels, queries: Sequence[str] | None = None
) -> dict[str, metrics.PerQuery]:
    """Every run's per-query metrics, over `queries` (default: the queries of the first run)."""
    ids = {name: ranked_ids(run) for name, run in runs.items()}
    wanted = list(queries) if queries is not None else list(next(iter(ids.values()), {}))
    return {name: metrics.per_query(r, qrels, wanted) for name, r in ids.items()}


def score_values(values: Mapping[str, metrics.PerQuery], queries: int) -> list[Record]:
    records: list[Record] = []
    for name, per_query in values.items():
        summary = metrics.summarize(per_query, queries)
        summary.pop("note")
        records.append({"run": name, **summary})
    return records


def score(
    runs: Mapping[str, RunLike], qrels: Qrels, queries: Sequence[str] | None = None
) -> list[Record]:
    """One record per run: every metric's mean and the query counts."""
    values = per_query_values(runs, qrels, queries)
    n = len(queries) if queries is not None else len(ranked_ids(next(iter(runs.values()))))
    return score_values(values, n) if runs else []


def per_query(
    runs: Mapping[str, RunLike], qrels: Qrels, queries: Sequence[str] | None = None
) -> list[Record]:
    """One record per run and scored query, with every metric of that query."""
    values = per_query_values(runs, qrels, queries)
    return [
        {"run": name, "query_id": q, **row}
        for name, rows in values.items()
        for q, row in rows.items()
    ]


def compare(
    runs: Mapping[str, RunLike],
    qrels: Qrels,
    queries: Sequence[str] | None = None,
    metric_names: Sequence[str] | None = None,
    test: Test = "randomization",
) -> list[Record]:
    """One record per later run and metric (default: every metric shown): difference to the
    first run and its p-value."""
    values = per_query_values(runs, qrels, queries)
    names = compared_metrics(values) if metric_names is None else metric_names
    return significance.compare(values, names, test)
