"""What every benchmark of one run shares: settings, scratch space, and data built once."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.corpus import Corpus, load_corpus
from benchmarks.fixtures import write_index
from benchmarks.profile import Profile
from benchmarks.synthetic import Deriver, neighbour_stats
from recommender.config import Settings
from recommender.embedding.backends import model_id_for
from recommender.embedding.encoder import ArticleEncoder
from recommender.indexing import build_index
from recommender.storage.vectors import VectorIndexConfig


@dataclass
class RunContext:
    """Inputs of a run; the corpus, scaled vectors and index directories are made on demand."""

    data: Path
    settings: Settings
    profile: Profile
    sizes: tuple[int, ...]
    scratch: Path
    seed: int = 0
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    _corpus: Corpus | None = None
    _deriver: Deriver | None = None
    _vectors: dict[int, np.ndarray] = field(default_factory=dict)
    _indexes: dict[int, tuple[Path, float]] = field(default_factory=dict)
    real_index: Path | None = None

    @property
    def model_id(self) -> str:
        return model_id_for(self.settings)

    def corpus(self) -> Corpus:
        if self._corpus is None:
            self._corpus = load_corpus(self.data, self.settings)
        return self._corpus

    def deriver(self) -> Deriver:
        if self._deriver is None:
            self._deriver = Deriver.fit(self.corpus().vectors, self.profile.scale_sample, self.seed)
        return self._deriver

    def vectors(self, size: int) -> np.ndarray:
        if size not in self._vectors:
            self._vectors[size] = self.deriver().vectors(size, self.seed)
        return self._vectors[size]

    def scale_info(self) -> dict[str, Any]:
        """How sizes were made from the real corpus, with nearest-neighbour realism per size."""
        d = self.deriver()
        sample = self.profile.scale_sample
        return {
            "real_articles": len(self.corpus()),
            "sigma": round(d.sigma, 4),
            "target_median_nn_cos": round(d.target_cos, 4),
            "real": neighbour_stats(d.real, sample, self.seed + 1),
            "by_size": {
                str(n): neighbour_stats(self.vectors(n), sample, self.seed + 1) for n in self.sizes
            },
        }

    def real_index_dir(self) -> Path:
        """The real corpus indexed with build_index (text signals included), built once."""
        if self.real_index is None:
            directory = self.scratch / "real-index"
            encoder = ArticleEncoder.from_settings(self.settings)
            build_index(self.data, directory, encoder, self.settings, progress=False)
            self.real_index = directory
        return self.real_index

    def index(self, size: int) -> tuple[Path, float]:
        """An index directory of `size` placeholder articles (default VectorIndexConfig), and the
        seconds its generation took to build."""
        if size not in self._indexes:
            directory = self.scratch / f"index-{size}"
            started = time.perf_counter()
            write_index(
                directory, self.vectors(size), self.model_id, VectorIndexConfig(), self.settings
            )
            self._indexes[size] = (directory, time.perf_counter() - started)
        return self._indexes[size]
