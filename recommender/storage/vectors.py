"""The FAISS vector index: exact inner product while small, HNSW above a measured size threshold.

Vectors are L2-normalized, so inner product is cosine similarity. FAISS ids are store rows.
Filters (allowed rows, excluded rows) are applied inside the search with FAISS ID selectors, so
a filtered list still fills up; a small allowed set is searched exactly over its own vectors.
"""

from __future__ import annotations

from collections.abc import Collection as Sized
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
from pydantic import BaseModel, Field

faiss_any: Any = faiss  # the SWIG stubs miss the search-parameter classes
IndexKind = Literal["flat", "hnsw"]


class IndexConfig(BaseModel):
    """How the vector index is built; recorded in the index manifest."""

    kind: Literal["auto", "flat", "hnsw"] = "auto"
    hnsw_threshold: int = Field(
        default=5_000,
        description="auto: exact search below this many vectors, HNSW from it on (measured "
        "crossover for a 200-candidate search: 5,400; benchmarks/README.md)",
    )
    hnsw_m: int = 48
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = Field(
        default=32, description="recall@10 0.994 at 100k with M=48 (benchmarks/README.md)"
    )
    exact_below_allowed: int = Field(
        default=20_000, description="filtered searches over fewer allowed rows than this are exact"
    )

    def resolved_kind(self, count: int) -> IndexKind:
        if self.kind == "auto":
            return "hnsw" if count >= self.hnsw_threshold else "flat"
        return self.kind


class VectorIndex:
    FILENAME = "vectors.faiss"
    VECTORS = "vectors.npy"

    def __init__(self, index: Any, vectors: np.ndarray, config: IndexConfig) -> None:
        self.index = index
        self.vectors = vectors
        self.config = config
        if isinstance(index, faiss.IndexHNSW):
            index.hnsw.efSearch = config.hnsw_ef_search

    @property
    def kind(self) -> IndexKind:
        return "hnsw" if isinstance(self.index, faiss.IndexHNSW) else "flat"

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @classmethod
    def build(cls, vectors: np.ndarray, config: IndexConfig) -> VectorIndex:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dim = vectors.shape[1]
        index: Any
        if config.resolved_kind(len(vectors)) == "hnsw":
            index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = config.hnsw_ef_construction
        else:
            index = faiss.IndexFlatIP(dim)
        if len(vectors):
            index.add(vectors)
        return cls(index, vectors, config)

    def save(self, directory: Path) -> None:
        faiss.write_index(self.index, str(directory / self.FILENAME))
        np.save(directory / self.VECTORS, self.vectors)

    @classmethod
    def load(cls, directory: Path, config: IndexConfig) -> VectorIndex:
        index = faiss.read_index(str(directory / cls.FILENAME))
        vectors = np.load(directory / cls.VECTORS, mmap_mode="r")
        return cls(index, vectors, config)

    def params(self) -> dict[str, Any]:
        if self.kind == "hnsw":
            return {
                "kind": "hnsw",
                "m": self.config.hnsw_m,
                "ef_construction": self.config.hnsw_ef_construction,
                "ef_search": self.config.hnsw_ef_search,
                "metric": "inner_product",
            }
        return {"kind": "flat", "metric": "inner_product"}

    def search(
        self,
        query: np.ndarray,
        k: int,
        exclude: Sized[int] = (),
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` rows by cosine to `query`: (rows, scores), best first, filters applied."""
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        k = min(k, len(self))
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        if allowed is not None:
            allowed = np.setdiff1d(
                allowed, np.fromiter(exclude, dtype=np.int64), assume_unique=False
            )
            if len(allowed) < self.config.exact_below_allowed:
                return self._exact_subset(q[0], allowed, k)
            selector: Any = faiss.IDSelectorBatch(allowed.astype(np.int64))
        elif exclude:
            selector = faiss.IDSelectorNot(
                faiss.IDSelectorBatch(np.fromiter(exclude, dtype=np.int64))
            )
        else:
            selector = None
        params: Any = None
        if selector is not None:
            if self.kind == "hnsw":
                params = faiss_any.SearchParametersHNSW(
                    sel=selector, efSearch=max(self.config.hnsw_ef_search, k)
                )
            else:
                params = faiss_any.SearchParameters(sel=selector)
        elif self.kind == "hnsw" and k > self.config.hnsw_ef_search:
            params = faiss_any.SearchParametersHNSW(efSearch=k)
        scores, rows = self.index.search(q, k, params=params)
        keep = rows[0] >= 0
        return rows[0][keep].astype(np.int64), scores[0][keep]

    def _exact_subset(
        self, query: np.ndarray, allowed: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        if len(allowed) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        scores = np.asarray(self.vectors[allowed]) @ query
        top = np.argsort(-scores, kind="stable")[:k]
        return allowed[top].astype(np.int64), scores[top].astype(np.float32)
