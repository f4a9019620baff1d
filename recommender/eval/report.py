"""The per-query report: one self-contained HTML file (no external scripts, styles or images).

It holds the summary table with each run's difference to the first and its paired significance,
the charts (PNG embedded as data URIs), and a drill-down per query, the queries that differ most
between the runs first: the query article's title, date and source, then each run's top k with
the grade of every item (unjudged items marked), its score parts and the reason it is shown.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import jinja2

from recommender.articles import Article
from recommender.eval import metrics, significance
from recommender.eval.files import Qrels, Record, Run, RunItem, doc_ids, happenings_of
from recommender.eval.pooling import lead
from recommender.eval.scoring import compared_metrics, score_values
from recommender.eval.significance import Test

GRADE_NAMES = {3: "same story", 2: "same event", 1: "related", 0: "not related"}
KEY_METRIC = "ndcg@10"


def _png(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _delta_chart(values: Mapping[str, metrics.PerQuery], metric: str) -> bytes | None:
    """Each later run's per-query difference to the first, sorted: where the gains and losses
    are, and how many queries they come from."""
    names = list(values)
    if len(names) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = values[names[0]]
    fig, ax = plt.subplots(figsize=(8.0, 3.2))
    for name in names[1:]:
        run = values[name]
        d = sorted(run[q][metric] - base[q][metric] for q in base if metric in base[q] and q in run)
        ax.plot(range(len(d)), d, label=f"{name} − {names[0]}")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("queries, sorted by difference")
    ax.set_ylabel(f"Δ {metric}")
    ax.legend(fontsize="small", loc="upper left")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _date(article: Article | None) -> str:
    return article.published.date().isoformat() if article and article.published else ""


def _item(
    rank: int,
    item: RunItem,
    grades: Mapping[str, int],
    labels: Mapping[str, str],
    by_id: Mapping[str, Article],
) -> Record:
    article = by_id.get(item.doc_id)
    grade = grades.get(item.doc_id)
    return {
        "rank": rank,
        "doc_id": item.doc_id,
        "title": article.title if article else "(not in the articles file)",
        "date": _date(article),
        "source": (article.source or "") if article else "",
        "grade": grade,
        "grade_name": GRADE_NAMES.get(grade, "unjudged") if grade is not None else "unjudged",
        "happening": labels.get(item.doc_id, ""),
        "score": item.score,
        "parts": ", ".join(f"{k} {v:.3f}" for k, v in item.parts.items()),
        "reason": item.reason,
    }


def _query_rows(
    runs: Mapping[str, Run],
    qrels: Qrels,
    by_id: Mapping[str, Article],
    queries: Sequence[str],
    values: Mapping[str, metrics.PerQuery],
    k: int,
) -> list[Record]:
    names = list(runs)
    happenings, _ = happenings_of(qrels)
    rows: list[Record] = []
    for q in queries:
        grades = {d: g for d, g in qrels.get(q, {}).items() if d != q}
        labels = happenings.get(q, {})
        article = by_id.get(q)
        scores = {n: values[n].get(q, {}).get(KEY_METRIC) for n in names}
        known = [s for s in scores.values() if s is not None]
        shown = {it.doc_id for n in names for it in runs[n].get(q, [])[:k]}
        missed = [
            {
                "doc_id": d,
                "grade": g,
                "happening": labels.get(d, ""),
                "title": by_id[d].title if d in by_id else d,
            }
            for d, g in sorted(grades.items(), key=lambda p: (-p[1], p[0]))
            if g >= metrics.RELEVANT and d not in shown
        ]
        rows.append(
            {
                "id": q,
                "title": article.title if article else "(not in the articles file)",
                "date": _date(article),
                "source": (article.source or "") if article else "",
                "lead": lead(article) if article else "",
                "scored": bool(known),
                "spread": max(known) - min(known) if known else -1.0,
                "scores": scores,
                "relevant": sum(g >= metrics.RELEVANT for g in grades.values()),
                "happenings": sorted(
                    {h for d, h in labels.items() if grades.get(d) == metrics.RELEVANT}
                ),
                "runs": {
                    n: [
                        _item(i, it, grades, labels, by_id)
                        for i, it in enumerate(
                            [x for x in runs[n].get(q, []) if x.doc_id != q][:k], start=1
                        )
                    ]
                    for n in names
                },
                "missed": missed,
            }
        )
    rows.sort(key=lambda r: (not r["scored"], -r["spread"], r["id"]))
    return rows


def render(
    runs: Mapping[str, Run],
    qrels: Qrels,
    articles: Mapping[str, Article],
    queries: Sequence[str] | None = None,
    k: int = 10,
    test: Test = "randomization",
    sources: Sequence[str] = (),
) -> str:
    """The report as one HTML document."""
    names = list(runs)
    wanted = list(queries) if queries is not None else list(next(iter(runs.values()), {}))
    values = {n: metrics.per_query(doc_ids(run), qrels, wanted) for n, run in runs.items()}
    summaries = {r["run"]: r for r in score_values(values, len(wanted))}
    compared = compared_metrics(values)
    records = significance.compare(values, compared, test)
    found = {(r["run"], r["metric"]): r for r in records}
    table = [
        {
            "name": n,
            "cells": [
                {"value": float(summaries[n][m]), "compare": found.get((n, m))} for m in compared
            ],
        }
        for n in names
    ]
    chart = _png(metrics.chart_png(summaries, [m for m in compared if m in metrics.SHARES]))
    delta_png = _delta_chart(values, KEY_METRIC)
    template = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template), autoescape=True, undefined=jinja2.StrictUndefined
    ).get_template("report.html.j2")
    first = next(iter(summaries.values()), {})
    return template.render(
        names=names,
        metrics=compared,
        table=table,
        test=significance.TEST_NAMES[test],
        alpha=significance.ALPHA,
        chart=chart,
        delta_chart=_png(delta_png) if delta_png else None,
        key_metric=KEY_METRIC,
        queries=_query_rows(runs, qrels, articles, wanted, values, k),
        counts=first,
        k=k,
        sources=list(sources),
        created=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def _template(name: str) -> str:
    return resources.files("recommender.eval").joinpath(name).read_text(encoding="utf-8")


def write_report(path: Path, html: str) -> None:
    path.write_text(html, encoding="utf-8")
