"""The `recommender` command line, one module per command group: `models`, `index`, `eval`
(`evaluate`), `ranker`, and the commands `encode`, `related`, `serve` and `sample`. Shared
option types are in `options`, the consoles and failing in `common`."""

from __future__ import annotations

import typer

from recommender.cli import evaluate, index, models, ranker
from recommender.cli.common import out
from recommender.cli.encode import encode
from recommender.cli.related import related
from recommender.cli.serve import serve
from recommender.sample import sample_corpus

app = typer.Typer(help="Related stories for Bulgarian news sites.", no_args_is_help=True)
app.add_typer(models.app, name="models")
app.add_typer(index.app, name="index")
app.add_typer(evaluate.app, name="eval")
app.add_typer(ranker.app, name="ranker")
app.command()(encode)
app.command()(related)
app.command()(serve)


@app.command()
def sample() -> None:
    """Print the path of the bundled sample corpus (qrels.tsv and queries.tsv beside it)."""
    out.print(str(sample_corpus()), highlight=False)
