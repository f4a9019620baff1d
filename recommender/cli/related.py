"""`recommender related`: the related stories of an indexed article, computed now."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from recommender.cli.common import fail, open_engine, out, settings_for
from recommender.cli.options import IndexOpt, JsonOpt, model_options
from recommender.ranking.related import ArticleNotFound, RelatedQuery

HELP = {
    "section": "only this section",
    "source": "only this source (site)",
    "method": "hybrid: every signal; dense: e5 cosine alone",
    "min_score": "minimum fused score",
}


@model_options(RelatedQuery, short={"k": "-k"}, helps=HELP)
def related(
    article_id: Annotated[str, typer.Argument(help="Id of an indexed article")],
    q: RelatedQuery,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the related stories of an indexed article, computed now.

    The options are the query parameters of the API's GET /articles/{id}/related; --json
    prints its answer."""
    settings = settings_for(index)
    engine = open_engine(settings, with_encoder=False)
    try:
        items = engine.related(article_id, q)
        article = engine.article(article_id)
        model_id = engine.model_id
    except ArticleNotFound:
        raise fail(f"article '{article_id}' is not in {settings.index_dir}") from None
    finally:
        engine.close()
    if as_json:
        records = [i.record() for i in items]
        answer = {"article_id": article_id, "model_id": model_id, "count": len(records)}
        sys.stdout.write(json.dumps({**answer, "items": records}, ensure_ascii=False, indent=2))
        sys.stdout.write("\n")
        return
    assert article is not None
    out.print(f"[bold]{article.title}[/bold]", highlight=False)
    for n, item in enumerate(items, 1):
        a = item.article
        date = a.published.date().isoformat() if a.published else "----------"
        out.print(f"{n:>2}. {item.score:.3f}  {date}  {a.title}", highlight=False)
        out.print(f"      {a.url or a.id}  ({item.reason})", highlight=False, style="dim")
