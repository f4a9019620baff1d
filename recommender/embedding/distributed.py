"""Encoding through Ray Data: the uncached texts of a batch job, spread over a Ray cluster.

The driver has read and validated the articles (rejects are the reader's, as in a local build);
here it cleans them into the texts that are embedded and looks those up in the embedding cache.
Only the missing texts become a Ray dataset, which `map_batches` sends to a pool of
`EncoderActor`s (`concurrency` actors of `num_cpus` CPUs each, one model loaded per actor). The
vectors stream back to the driver batch by batch, are cached as they arrive (a killed run keeps
its work) and are placed in input order.

Needs the optional extra: `pip install -e '.[ray]'`. Every node of a cluster needs the project
installed and the model built at the same path (`recommender models build`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recommender.articles import Article
from recommender.config import Settings
from recommender.embedding.encoder import ArticleEncoder, article_text


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide: `address` None starts a local Ray instance, else joins a cluster
    (`auto` for the one this machine belongs to, `HOST:PORT` or `ray://HOST:10001`)."""

    address: str | None = None
    concurrency: int = 1
    num_cpus: float = 1.0
    batch_size: int = 64


@dataclass
class RayReport:
    texts: int = 0
    cached: int = 0
    sent: int = 0
    init_s: float = 0.0
    encode_s: float = 0.0
    cluster_cpus: float = 0.0


class EncoderActor:
    """One model per actor; Ray calls it with numpy batches of `row` and `text`."""

    def __init__(self, settings_json: str, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        settings = Settings.model_validate_json(settings_json)
        self.encoder = ArticleEncoder.from_settings(settings, use_cache=False)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.encoder.encode_texts([str(t) for t in batch["text"]])
        return {"row": batch["row"], "vector": vectors}


def _actor_settings(settings: Settings) -> str:
    """The settings as JSON for the actors, with paths made absolute (workers have their own
    working directory)."""
    return settings.model_copy(
        update={"models_dir": settings.models_dir.resolve()}
    ).model_dump_json()


def encode_with_ray(
    articles: Sequence[Article],
    encoder: ArticleEncoder,
    settings: Settings,
    options: RayOptions,
    progress: bool = False,
) -> tuple[np.ndarray, RayReport]:
    """Vectors of `articles` in input order: cached ones from `encoder`'s cache, the others
    encoded by Ray actors with the same settings (so the same backend and text strategy)."""
    import ray

    texts = [article_text(a) for a in articles]
    hashes = [encoder.text_hash(t) for t in texts]
    cache = encoder.cache
    found = cache.get_many(encoder.cache_key, hashes, encoder.dim) if cache else {}
    out = np.empty((len(texts), encoder.dim), dtype=np.float32)
    missing: dict[str, list[int]] = {}
    for i, h in enumerate(hashes):
        if h in found:
            out[i] = found[h]
        else:
            missing.setdefault(h, []).append(i)
    report = RayReport(texts=len(texts), cached=len(texts) - sum(map(len, missing.values())))
    report.sent = len(missing)
    if not missing:
        return out, report
    started = time.perf_counter()
    owns = not ray.is_initialized()
    if owns:
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False)
    try:
        report.init_s = time.perf_counter() - started
        resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
        report.cluster_cpus = float(resources.get("CPU", 0.0))
        ray.data.DataContext.get_current().enable_progress_bars = progress
        first = {h: rows[0] for h, rows in missing.items()}
        items: list[dict[str, Any]] = [{"row": r, "text": texts[r]} for r in first.values()]
        dataset = ray.data.from_items(items).map_batches(
            EncoderActor,
            fn_constructor_args=(_actor_settings(settings), max(1, int(options.num_cpus))),
            batch_size=options.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=options.concurrency),
            num_cpus=options.num_cpus,
        )
        t0 = time.perf_counter()
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            rows = [int(r) for r in batch["row"]]
            vectors = np.asarray(batch["vector"], dtype=np.float32)
            for r, v in zip(rows, vectors, strict=True):
                out[missing[hashes[r]]] = v
            if cache:
                done = [hashes[r] for r in rows]
                cache.put_many(encoder.cache_key, zip(done, vectors, strict=True))
        report.encode_s = time.perf_counter() - t0
    finally:
        if owns:
            ray.shutdown()
    return out, report
