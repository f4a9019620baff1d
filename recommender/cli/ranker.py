"""`recommender ranker ...`: train the learned ranking from judgements."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recommender.cli.common import files_exist, out, read, settings_for
from recommender.cli.evaluate import collection
from recommender.cli.options import IndexOpt, InputOpt, QrelsOpt, out_option, queries_option

app = typer.Typer(help="Train the ranking model from judgements.", no_args_is_help=True)


@app.command("train")
def ranker_train(
    input: InputOpt,
    qrels: QrelsOpt,
    model_path: Annotated[Path, out_option("Model directory to write")],
    queries: Annotated[Path | None, queries_option("the judged queries")] = None,
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

    files_exist([input, *qrels, *([queries] if queries else [])])
    heuristic = read(load_qrels, qrels[0])
    judgements = read(lambda _: load_qrels(*qrels), qrels[0])
    query_ids = read(read_queries, queries) if queries else sorted(judgements)
    settings = settings_for()
    settings.ranking = settings.ranking.model_copy(update={"model": None})
    directory = collection(input, index, settings)
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
