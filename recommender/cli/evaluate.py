"""`recommender eval ...`: runs, scores, significance, pooled judging and the report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from recommender.cli.common import err, fail, files_exist, out, read, settings_for
from recommender.cli.options import (
    IndexOpt,
    InputOpt,
    JsonOpt,
    Method,
    QrelsOpt,
    RunsOpt,
    Stage,
    TestOpt,
    k_option,
    out_option,
    queries_option,
)
from recommender.config import Settings
from recommender.ranking.related import K_LIMIT

if TYPE_CHECKING:
    from recommender.eval.files import Qrels, Record, Run

app = typer.Typer(help="Measure relevance against judgements.", no_args_is_help=True)

RunQueriesOpt = Annotated[Path | None, queries_option("the first run's")]


def collection(input: Path, index: Path | None, settings: Settings) -> Path:
    """`recommender.eval.collection.collection_index`; a refusal or a bad input fails."""
    from recommender.eval.collection import collection_index

    try:
        return collection_index(
            input, index, settings, announce=lambda m: err.print(m, highlight=False)
        )
    except ValueError as exc:
        raise fail(str(exc)) from None


@app.command("run")
def eval_run(
    input: InputOpt,
    queries: Annotated[Path, typer.Option(help="Query ids, TSV with a query_id column")],
    run_path: Annotated[
        Path, out_option("Run TSV to write: query_id doc_id rank score reason parts")
    ],
    k: Annotated[int, k_option("Stories per query", K_LIMIT)] = K_LIMIT,
    stage: Annotated[Stage, typer.Option(help="ranked: relevance; final: what readers see")] = (
        "ranked"
    ),
    method: Annotated[
        Method, typer.Option(help="The project's pipeline, the stored lists, or one signal")
    ] = "pipeline",
    index: IndexOpt = None,
) -> None:
    """Related stories of every query article, as a run file to score."""
    from recommender.engine import Engine
    from recommender.eval.files import read_queries, write_run
    from recommender.eval.runs import run_queries

    files_exist([input, queries])
    query_ids = read(read_queries, queries)
    settings = settings_for()
    directory = collection(input, index, settings)
    engine = Engine(directory, settings)
    try:
        run, missing = run_queries(
            engine, query_ids, method=method, stage=stage, k=k, progress=True
        )
    finally:
        engine.close()
    write_run(run_path, run)
    if missing:
        err.print(f"[yellow]{len(missing)} query ids are not in the index[/yellow]")
    out.print(
        f"wrote {run_path}: {len(run)} queries, method {method}, stage {stage}", highlight=False
    )


def _bench_inputs(
    run: list[Path], qrels: list[Path], queries: Path | None
) -> tuple[dict[str, Run], Qrels, list[str]]:
    """Runs by name (the file's stem, or its path when two stems clash), merged judgements and
    the query ids to score."""
    from recommender.eval.files import load_qrels, load_run, read_queries

    files_exist([*run, *qrels, *([queries] if queries else [])])
    stems = [p.stem for p in run]
    runs = {(p.stem if stems.count(p.stem) == 1 else str(p)): read(load_run, p) for p in run}
    judgements = read(lambda _: load_qrels(*qrels), qrels[0])
    query_ids = read(read_queries, queries) if queries else list(next(iter(runs.values())))
    return runs, judgements, query_ids


@app.command("score")
def eval_score(
    run: RunsOpt,
    qrels: QrelsOpt,
    queries: RunQueriesOpt = None,
    compare: Annotated[
        bool, typer.Option(help="Differences to the first run with a paired significance test")
    ] = False,
    test: TestOpt = "randomization",
    deltas: Annotated[
        Path | None, typer.Option(help="With --compare: write per-query differences (TSV)")
    ] = None,
    chart: Annotated[Path | None, typer.Option(help="Write a PNG bar chart of the runs")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Score runs (nDCG@10, capped recall, α-nDCG@10, story recall; with happening-labelled
    judgements the box's ruler too); --compare tests significance.

    One run prints JSON, several a table; with --compare each metric's difference to the first
    run, its paired p-value and * where p < 0.05."""
    from recommender.eval import significance
    from recommender.eval.metrics import markdown_table, write_chart
    from recommender.eval.scoring import compared_metrics, per_query_values, score_values

    runs, judgements, query_ids = _bench_inputs(run, qrels, queries)
    values = per_query_values(runs, judgements, query_ids)
    summaries = {r["run"]: r for r in score_values(values, len(query_ids))}
    shown = compared_metrics(values)
    if chart is not None:
        write_chart(summaries, chart)
    if not compare:
        if len(run) == 1 and not as_json:
            sys.stdout.write(json.dumps(next(iter(summaries.values())), indent=2) + "\n")
        elif as_json:
            sys.stdout.write(json.dumps(list(summaries.values()), indent=2) + "\n")
        else:
            out.print(markdown_table(summaries, shown), highlight=False)
        return
    records = significance.compare(values, shown, test)
    if deltas is not None:
        _write_tsv(deltas, significance.deltas(values, shown))
    if as_json:
        sys.stdout.write(json.dumps({"runs": list(summaries.values()), "compare": records}) + "\n")
        return
    out.print(significance.markdown(summaries, records, shown), highlight=False)


def _write_tsv(path: Path, records: list[Record]) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(
            fh,
            fieldnames=list(records[0]) if records else ["query_id"],
            delimiter="\t",
            lineterminator="\n",
        )
        writer.writeheader()
        for r in records:
            writer.writerow({k: f"{v:.6f}" if isinstance(v, float) else v for k, v in r.items()})


@app.command("pool")
def eval_pool(
    run: RunsOpt,
    qrels: QrelsOpt,
    input: InputOpt,
    pool_path: Annotated[Path, out_option("Pool CSV to write")],
    depth: Annotated[int, typer.Option(min=1, help="Top of each run to pool")] = 5,
    queries: Annotated[Path | None, queries_option("all")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the shuffled order")] = 0,
) -> None:
    """Unjudged pairs in the top --depth of any run, blind and shuffled, as a CSV to judge."""
    from recommender.eval.pooling import pool, write_pool

    files_exist([input])
    runs, judgements, query_ids = _bench_inputs(run, qrels, queries)
    try:
        records = pool(runs, judgements, input, depth, seed, query_ids if queries else None)
    except ValueError as exc:
        raise fail(f"{exc} ({input})") from None
    write_pool(pool_path, records)
    out.print(
        f"wrote {pool_path}: {len(records)} unjudged pairs from the top {depth} of {len(runs)} "
        f"runs; fill the grade column (0 not related, 1 related, 2 same event, 3 same story) "
        f"and pass it as a further --qrels",
        highlight=False,
    )


@app.command("report")
def eval_report(
    run: RunsOpt,
    qrels: QrelsOpt,
    input: InputOpt,
    report_path: Annotated[Path, out_option("HTML file to write")],
    queries: RunQueriesOpt = None,
    k: Annotated[int, k_option("Items shown per run and query")] = 10,
    test: TestOpt = "randomization",
) -> None:
    """One self-contained HTML page: summary with significance, charts, per-query drill-down."""
    from recommender.eval.pooling import load_articles
    from recommender.eval.report import render, write_report

    files_exist([input])
    runs, judgements, query_ids = _bench_inputs(run, qrels, queries)
    html = render(
        runs,
        judgements,
        read(load_articles, input),
        query_ids,
        k=k,
        test=test,
        sources=[str(p) for p in qrels],
    )
    write_report(report_path, html)
    out.print(f"wrote {report_path}: {len(runs)} runs, {len(query_ids)} queries", highlight=False)
