"""The API's in-memory cache of computed answers (`RECOMMENDER_RESPONSE_CACHE_BYTES`): an LRU
bounded in bytes, seen through HTTP by counting the answers the engine computes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from recommender.api import create_app
from recommender.articles import Article

# non-default parameters: the answer is computed (and cached), not the stored list
COMPUTED = {"k": 3, "stage": "ranked"}


@contextmanager
def counting_client(
    settings: object, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, list[str]]]:
    """A client and the ids whose related list the engine computed, in order."""
    computed: list[str] = []
    with TestClient(create_app(settings)) as client:  # type: ignore[arg-type]
        engine = client.app.state.recommender.engine  # type: ignore[attr-defined]
        related: Callable[..., object] = engine.related

        def counted(article_id: str, *args: object, **kwargs: object) -> object:
            computed.append(article_id)
            return related(article_id, *args, **kwargs)

        monkeypatch.setattr(engine, "related", counted)
        yield client, computed


def _items(client: TestClient, article_id: str) -> bytes:
    r = client.get(f"/articles/{article_id}/related", params=COMPUTED)
    assert r.status_code == 200
    return orjson.dumps(r.json()["items"])


def test_answers_past_the_byte_bound_are_evicted_least_recent_first(
    sample_index: Path,
    settings_factory,  # type: ignore[no-untyped-def]
    sample_articles: list[Article],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b, c, d = (x.id for x in sample_articles[:4])
    off = settings_factory(index_dir=sample_index, response_cache_bytes=0)
    with counting_client(off, monkeypatch) as (client, computed):
        sizes = {i: len(_items(client, i)) for i in (a, b, c)}
        _items(client, a)
        assert computed == [a, b, c, a]  # 0 turns the cache off

    # room for any two of the three answers, not for all three: the least recently used goes
    bound = sum(sizes.values()) - min(sizes.values()) // 2
    on = settings_factory(index_dir=sample_index, response_cache_bytes=bound)
    with counting_client(on, monkeypatch) as (client, computed):
        for i in (a, b, c, c, b):
            _items(client, i)
        assert computed == [a, b, c]  # a went when c came
        _items(client, a)  # computed again, and kept in place of c, read longer ago than b
        assert computed == [a, b, c, a]
        # twenty items are more than the whole bound: never kept, and nothing is evicted for them
        for _ in range(2):
            r = client.get(f"/articles/{d}/related", params={**COMPUTED, "k": 20})
            assert len(orjson.dumps(r.json()["items"])) > bound
        _items(client, b)
        _items(client, a)
        assert computed == [a, b, c, a, d, d]
        _items(client, c)
        assert computed == [a, b, c, a, d, d, c]
