"""The vector index: FAISS over the article vectors by slot, mutable, with tombstones.

Vectors are L2-normalized, so inner product is cosine similarity. FAISS ids are slots (the
article's position in the in-memory arrays). Why this shape, given what FAISS allows:

- HNSW cannot remove vectors, and no FAISS index may be changed while it is searched. Both kinds
  are wrapped in `IndexIDMap` so ids are slots; a removed slot becomes a tombstone that an ID
  selector excludes at search time, and once tombstones pass `rebuild_ratio` of the index it is
  rebuilt from the live vectors, which an owner may do aside and swap in.
- Exact `IndexFlatIP` while small, HNSW from `hnsw_threshold` on (the measured crossover for
  the service's 200-candidate search, benchmarks/README.md). The kind is chosen when the index
  is built from the store (start-up, a new generation, `index compact`).
- Search parameters (efSearch, the selector) are passed per call, never set on the shared index.
- Filters (allowed slots, excluded slots) are applied inside the search with ID selectors, so a
  filtered list still fills up; a small allowed set is searched exactly over its own vectors.

Not thread-safe by itself: the mirror that owns it holds a lock around changes and searches.
"""

from __future__ import annotations

from typing import Any, Literal

import faiss
import numpy as np
from pydantic import BaseModel, Field

faiss_any: Any = faiss  # the SWIG stubs miss the search-parameter classes
IndexKind = Literal["flat", "hnsw"]


class VectorIndexConfig(BaseModel):
    """How the vector index is built."""

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
    rebuild_ratio: float = Field(
        default=0.2, description="rebuild the index once this share of its vectors are removed"
    )

    def resolved_kind(self, count: int) -> IndexKind:
        if self.kind == "auto":
            return "hnsw" if count >= self.hnsw_threshold else "flat"
        return self.kind


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)


class VectorIndex:
    """Vectors by slot in a growable array, and a FAISS index over the live ones."""

    def __init__(self, dim: int, config: VectorIndexConfig | None = None) -> None:
        self.config = config or VectorIndexConfig()
        self.dim = dim
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self.alive = np.zeros(0, dtype=bool)
        self.count = 0
        self.kind: IndexKind = "flat"
        self._index: Any = None
        self._indexed = 0
        self._tombstones = 0

    @property
    def vectors(self) -> np.ndarray:
        """Vectors by slot (rows of removed slots are stale)."""
        return self._vectors[: len(self.alive)]

    def __len__(self) -> int:
        return self.count

    @classmethod
    def build(
        cls, slots: np.ndarray, vectors: np.ndarray, config: VectorIndexConfig | None = None
    ) -> VectorIndex:
        """An index over `vectors` at `slots` (the kind chosen by their number)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(slots), -1)
        index = cls(vectors.shape[1], config)
        size = int(slots.max()) + 1 if len(slots) else 0
        index._reserve(size)
        index._vectors[slots] = vectors
        index.alive = np.zeros(size, dtype=bool)
        index.alive[slots] = True
        index.count = len(slots)
        index._rebuild()
        return index

    def _reserve(self, size: int) -> None:
        if len(self._vectors) < size:
            grown = np.zeros((max(size, 2 * len(self._vectors)), self.dim), dtype=np.float32)
            grown[: len(self._vectors)] = self._vectors
            self._vectors = grown

    def _new_faiss(self, kind: IndexKind) -> Any:
        inner: Any
        if kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.dim, self.config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.config.hnsw_ef_construction
        else:
            inner = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIDMap(inner)
        index.own_fields = True
        inner.this.disown()
        return index

    def _rebuild(self) -> None:
        slots = np.flatnonzero(self.alive).astype(np.int64)
        self.kind = self.config.resolved_kind(len(slots))
        index = self._new_faiss(self.kind)
        if len(slots):
            index.add_with_ids(np.ascontiguousarray(self._vectors[slots]), slots)
        self._index = index
        self._indexed = len(slots)
        self._tombstones = 0

    def add(self, slot: int, vector: np.ndarray) -> None:
        """Add the vector of a new slot (slots are never reused)."""
        if slot < len(self.alive) and self.alive[slot]:
            raise ValueError(f"slot {slot} is already in the vector index")
        self._reserve(slot + 1)
        if len(self.alive) <= slot:
            self.alive = np.concatenate([self.alive, np.zeros(slot + 1 - len(self.alive), bool)])
        self._vectors[slot] = vector
        self.alive[slot] = True
        self.count += 1
        self._index.add_with_ids(
            np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1),
            np.array([slot], dtype=np.int64),
        )
        self._indexed += 1

    def remove(self, slot: int) -> None:
        """Tombstone a slot; the index is rebuilt once tombstones pass `rebuild_ratio`."""
        if slot >= len(self.alive) or not self.alive[slot]:
            return
        self.alive[slot] = False
        self.count -= 1
        self._tombstones += 1
        if self.kind == "flat":
            self._index.remove_ids(np.array([slot], dtype=np.int64))
            self._indexed -= 1
            self._tombstones -= 1
        elif self._tombstones > self.config.rebuild_ratio * max(self._indexed, 1):
            self._rebuild()

    def params(self) -> dict[str, Any]:
        if self.kind == "hnsw":
            return {
                "kind": "hnsw",
                "m": self.config.hnsw_m,
                "ef_construction": self.config.hnsw_ef_construction,
                "ef_search": self.config.hnsw_ef_search,
                "metric": "inner_product",
                "tombstones": self._tombstones,
            }
        return {"kind": "flat", "metric": "inner_product"}

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` live slots by cosine to `query`: (slots, scores), best first.

        `allowed` is a boolean mask over slots (filters and exclusions applied); removed slots
        are never returned.
        """
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        k = min(k, self.count)
        if k <= 0:
            return _empty()
        mask = None
        if allowed is not None:
            mask = allowed[: len(self.alive)] & self.alive
            chosen = np.flatnonzero(mask)
            # a small allowed set is searched exactly over its own vectors; a mask that keeps
            # most of the index (the query's own slot left out) goes to FAISS with a selector
            if len(chosen) < min(self.config.exact_below_allowed, self.count // 2):
                return self._exact_subset(q[0], chosen, k)
        elif self._tombstones:
            mask = self.alive
        params: Any = None
        if mask is not None:
            bits = np.packbits(mask, bitorder="little")
            selector = faiss_any.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
            if self.kind == "hnsw":
                params = faiss_any.SearchParametersHNSW(
                    sel=selector, efSearch=max(self.config.hnsw_ef_search, k)
                )
            else:
                params = faiss_any.SearchParameters(sel=selector)
        elif self.kind == "hnsw":
            params = faiss_any.SearchParametersHNSW(efSearch=max(self.config.hnsw_ef_search, k))
        scores, slots = self._index.search(q, k, params=params)
        keep = slots[0] >= 0
        return slots[0][keep].astype(np.int64), scores[0][keep]

    def _exact_subset(
        self, query: np.ndarray, chosen: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        if len(chosen) == 0:
            return _empty()
        scores = self._vectors[chosen] @ query
        top = np.argsort(-scores, kind="stable")[:k]
        return chosen[top].astype(np.int64), scores[top].astype(np.float32)
