"""`recommender index ...`: build, update and inspect an index."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from recommender.cli.common import err, fail, open_engine, out, print_rejects, settings_for
from recommender.cli.options import IndexOpt, InputOpt, JsonOpt, ProgressOpt, RejectsOpt
from recommender.config import Settings

if TYPE_CHECKING:
    import numpy as np

    from recommender.articles import Article
    from recommender.embedding.encoder import ArticleEncoder
    from recommender.indexing import BuildReport

app = typer.Typer(help="Build and inspect indexes.", no_args_is_help=True)

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


def _input_exists(path: Path) -> None:
    if not path.is_file():
        raise fail(f"input file not found: {path}")


def _report_rows(report: BuildReport, rejects: Path | None, settings: Settings) -> Path:
    """Print rejects and duplicates; write the rejects file. Returns its path."""
    from recommender.indexing import write_rejects

    rejects_path = rejects or settings.index_dir.with_name(
        settings.index_dir.name + ".rejects.jsonl"
    )
    write_rejects(rejects_path, report.rejects)
    print_rejects(report.rejects)
    for d in report.duplicates:
        err.print(
            f"[yellow]duplicate id[/yellow] '{d.article_id}' at lines {d.first_line} and "
            f"{d.kept_line}: keeping line {d.kept_line}",
            highlight=False,
        )
    return rejects_path


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
        raise fail("--ray needs the ray extra: pip install -e '.[ray]'")
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


@app.command("build")
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

    settings = settings_for(index)
    since = IndexDir(settings.index_dir).mark()  # first: the model takes seconds to load
    if since is not None:
        err.print(
            f"carrying over the writes {since.generation} takes after change {since.seq}",
            highlight=False,
        )

    from recommender.embedding.encoder import ArticleEncoder
    from recommender.engine import IndexUnavailable
    from recommender.indexing import build_index

    _input_exists(input)
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
        raise fail(str(exc)) from None
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


@app.command("rebuild")
def index_rebuild(index: IndexOpt = None, progress: ProgressOpt = True) -> None:
    """Reindex what the index serves, from its own store, into a new generation: encoded with
    the configured model (cached vectors reused), every list ranked again, removed articles
    compacted away; writes taken meanwhile are carried over, nothing served is dropped."""
    from recommender.embedding.encoder import ArticleEncoder
    from recommender.indexing import rebuild_index
    from recommender.storage.generations import IndexMissing
    from recommender.storage.store import StoreError

    settings = settings_for(index)
    try:
        generation = rebuild_index(
            settings.index_dir, ArticleEncoder.from_settings(settings), settings, progress=progress
        )
    except (IndexMissing, StoreError, FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    out.print(f"rebuilt {settings.index_dir} into {generation.name}", highlight=False)


@app.command("update")
def index_update(
    input: InputOpt,
    index: IndexOpt = None,
    rejects: RejectsOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Upsert the articles of a file into the index, in place (a server may be serving it):
    new and changed articles are encoded and written, unchanged ones are skipped."""
    from recommender.indexing import update_index

    settings = settings_for(index)
    _input_exists(input)
    engine = open_engine(settings, with_encoder=True)
    try:
        report = update_index(input, engine, progress=progress)
    except ValueError as exc:
        raise fail(str(exc)) from None
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


@app.command("delete")
def index_delete(
    ids: Annotated[list[str], typer.Argument(help="Ids of the articles to unpublish")],
    index: IndexOpt = None,
) -> None:
    """Unpublish articles: they leave the index and every stored list that held them."""
    engine = open_engine(settings_for(index), with_encoder=False)
    try:
        results = engine.delete(ids)
    finally:
        engine.close()
    missing = [r.id for r in results if r.status == "not_found"]
    out.print(f"deleted {len(results) - len(missing)} articles", highlight=False)
    if missing:
        raise fail(f"not in the index: {', '.join(missing)}")


@app.command("compact")
def index_compact(index: IndexOpt = None, progress: ProgressOpt = True) -> None:
    """Rewrite the index as a new generation without removed articles, and switch to it."""
    from recommender.engine import IndexUnavailable, compact

    settings = settings_for(index)
    try:
        generation = compact(settings.index_dir, settings, progress=progress)
    except IndexUnavailable as exc:
        raise fail(str(exc)) from None
    out.print(f"compacted {settings.index_dir} into {generation.name}", highlight=False)


@app.command("refresh")
def index_refresh(
    index: IndexOpt = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Oldest lists to recompute", show_default="all")
    ] = None,
) -> None:
    """Recompute stored related lists, oldest first (a server also does this in the
    background, every list at least every RECOMMENDER_REFRESH_HOURS)."""
    engine = open_engine(settings_for(index), with_encoder=False)
    try:
        changed = engine.refresh(limit)
    finally:
        engine.close()
    out.print(f"refreshed lists: {changed} changed", highlight=False)


@app.command("stats")
def index_stats(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """What an index holds: model, generation, size, log position, vector index parameters."""
    engine = open_engine(settings_for(index), with_encoder=False)
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
