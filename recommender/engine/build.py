"""Building a generation: a complete new one written aside, the writes meanwhile replayed, a switch.

`build_generation` writes a new generation of prepared articles aside (`_write_rows`), computes
every stored list (`_fill_lists`), replays the writes the old generation took while it was built
(`_replay`), and switches under the old one's write lock, so no write is lost. `compact`
rebuilds the current generation from its own store: live articles only, slots renumbered.

Thread safety: a build runs in one thread. It never touches another process's objects: it opens
its own stores and a pinned `Engine` on the new generation for the replay; the old store's
write transaction (SQLite's lock) is what keeps every process's writes out during the switch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from recommender.config import Settings
from recommender.engine.front import Engine
from recommender.engine.generation import IndexUnavailable, lexical_config, same_encoding
from recommender.engine.writer import Prepared, Writer, items_json
from recommender.ranking.related import Related, RelatedQuery
from recommender.storage.generations import IndexDir, IndexMissing, LogMark
from recommender.storage.mirror import Mirror
from recommender.storage.store import Store, StoreError
from recommender.storage.vectors import VectorIndexConfig

if TYPE_CHECKING:  # a reader never loads the encoder, so never imports it
    from recommender.embedding.encoder import ArticleEncoder


def _write_rows(store: Store, items: Iterable[Prepared]) -> int:
    count = 0
    with store.transaction() as tx:
        for item in items:
            tx.put_article(item.article, tx.take_slot(), item.vector, item.terms, item.entities, 0)
            count += 1
    return count


def _fill_lists(
    store: Store,
    gen_meta: dict[str, Any],
    settings: Settings,
    index_config: VectorIndexConfig,
    progress: bool,
) -> Mirror:
    mirror = Mirror.load(store, int(gen_meta["dim"]), index_config, lexical_config(gen_meta))
    related = Related(mirror, settings.ranking)
    q = RelatedQuery(k=settings.max_k)
    with store.transaction() as tx:
        for article_id in tqdm(
            list(mirror.slot_of), desc="related lists", unit="list", disable=not progress
        ):
            items = related.for_id(article_id, q)
            tx.put_list(article_id, items_json(items), [i.article.id for i in items], 0)
    return mirror


def _replay(old: Store, start: int, target: Writer) -> int:
    """Apply through `target` the writes `old` took after change `start`; returns the last seq.
    Their vectors and signals are copied, or computed again (target's encoder) when the two
    generations encode differently (a rebuild with another model)."""
    changes = old.changes_since(start)
    if not changes:
        return start
    ids = list(dict.fromkeys(c.id for c in changes))
    rows = old.stored(ids)
    gen = target.generation
    upserts = []
    for article_id in ids:
        row = rows.get(article_id)
        article = old.get(article_id) if row is not None else None
        if row is not None and article is not None:
            upserts.append(Prepared(article, row.vector, row.terms, row.entities))
    if upserts and not same_encoding(old.meta(), gen.meta):
        upserts = target.prepare([p.article for p in upserts], gen)
    with target.lock:
        target.write(
            gen,
            [p.article for p in upserts],
            {p.article.id: p for p in upserts},
            [i for i in ids if i not in rows],
        )
    return changes[-1].seq


def build_generation(
    directory: Path,
    items: Sequence[Prepared],
    meta: dict[str, Any],
    settings: Settings,
    index_config: VectorIndexConfig | None = None,
    progress: bool = True,
    before_switch: Callable[[], None] | None = None,
    since: int | LogMark | None = None,
    fill_lists: Callable[[Store], None] | None = None,
    encoder: ArticleEncoder | None = None,
) -> Path:
    """Write a complete new generation of `items` aside and make it current.

    Writes that the old generation accepted after change `since` (default: its last change
    when this starts) are replayed into the new one, the last ones under the old store's write
    lock, so none is lost at the switch. Replaying a write twice changes nothing. A `LogMark`
    also names the generation it was taken on: if another generation became current since,
    the build stops (its log is another one) instead of replaying the wrong changes.
    `fill_lists` replaces the computation of every stored list (benchmark fixtures use it to
    store lists of synthetic vectors quickly). `encoder` encodes the replayed writes when the
    new generation's model or settings differ from the old one's.
    """
    index_config = index_config or VectorIndexConfig()
    index_dir = IndexDir(directory)
    try:
        old: Store | None = Store(index_dir.current() / Store.FILENAME)
    except (IndexMissing, StoreError):
        old = None
    if isinstance(since, LogMark):
        if old is None or old.path.parent.name != since.generation:
            current = old.path.parent.name if old is not None else "none"
            if old is not None:
                old.close()
            raise IndexUnavailable(
                f"index {directory}: generation {since.generation} was current when this "
                f"build started, now {current} is (another build?); run the build again"
            )
        since = since.seq
    start = since if since is not None else old.head() if old is not None else 0
    meta = {**meta, "created": datetime.now(UTC).isoformat()}
    with index_dir.staging() as tmp:
        store = Store.create(tmp / Store.FILENAME, meta)
        _write_rows(store, items)
        if fill_lists is not None:
            fill_lists(store)
        else:
            _fill_lists(store, store.meta(), settings, index_config, progress)
        store.close()
        final = index_dir.install(tmp)
        if old is None:
            index_dir.switch(final)
        else:
            target = Engine(
                directory, settings, encoder, index_config=index_config, generation=final
            )
            try:
                start = _replay(old, start, target._writer)
                if before_switch is not None:
                    before_switch()
                with old.transaction():
                    _replay(old, start, target._writer)
                    index_dir.switch(final)
            finally:
                target.close()
                old.close()
    index_dir.collect()
    return final


def compact(directory: Path, settings: Settings, progress: bool = True) -> Path:
    """Rewrite the current generation as a new one: live articles only, slots renumbered,
    the vector index rebuilt without tombstones, every list recomputed; then switch."""
    index_dir = IndexDir(directory)
    try:
        store = Store(index_dir.current() / Store.FILENAME)
    except IndexMissing as exc:
        raise IndexUnavailable(str(exc)) from None
    try:
        since = store.head()
        meta = {k: v for k, v in store.meta().items() if k != "next_slot"}
        items = [
            Prepared(article, row.vector, row.terms, row.entities)
            for article, row in store.full_articles()
        ]
    finally:
        store.close()
    return build_generation(directory, items, meta, settings, progress=progress, since=since)
