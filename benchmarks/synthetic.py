"""Vectors for sizes beyond the real corpus, derived from the real ones.

A derived vector is a real vector moved along the directions in which real articles differ:
`normalize(v + sigma * n)` with `n ~ N(0, C)`, `C` the covariance of the real vectors. Noise of
that shape keeps derived vectors inside the (strongly anisotropic) region e5 vectors occupy;
isotropic noise would push them into directions no article uses and make the index's job
artificially hard. `sigma` is calibrated so that the median cosine between a derived vector and
its source equals the median cosine between a real article and its nearest real neighbour: a
derived article is as close to its source as a real article is to its closest story, neither a
near-copy nor noise. `neighbour_stats` reports the resulting nearest-neighbour cosines per size
so the realism of each scale can be checked against the real corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

CHUNK = 65_536


def _normalize(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.maximum(norms, 1e-12), dtype=np.float32)


def nearest_cosines(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Cosine of each listed row to its nearest other row (exact search)."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    scores, found = index.search(np.ascontiguousarray(vectors[rows]), 2)
    self_first = found[:, 0] == rows
    nearest: np.ndarray = np.where(self_first, scores[:, 1], scores[:, 0]).astype(np.float64)
    return nearest


def neighbour_stats(vectors: np.ndarray, sample: int, seed: int) -> dict[str, float]:
    """Percentiles of the nearest-neighbour cosine over a random sample of rows."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(vectors), size=min(sample, len(vectors)), replace=False)
    cos = nearest_cosines(vectors, rows)
    return {f"nn_cos_p{p}": round(float(np.percentile(cos, p)), 4) for p in (10, 50, 90)}


@dataclass(frozen=True)
class Deriver:
    """Derives vectors from real ones with covariance-shaped noise of scale `sigma`."""

    real: np.ndarray
    basis: np.ndarray
    sigma: float
    target_cos: float

    @classmethod
    def fit(cls, real: np.ndarray, sample: int, seed: int) -> Deriver:
        real = np.ascontiguousarray(real, dtype=np.float32)
        centred = real - real.mean(axis=0)
        eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / max(len(real) - 1, 1))
        basis = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))).T.astype(np.float32)
        rng = np.random.default_rng(seed)
        rows = rng.choice(len(real), size=min(sample, len(real)), replace=False)
        target = float(np.median(nearest_cosines(real, rows)))
        noise = rng.standard_normal((len(rows), basis.shape[0])).astype(np.float32) @ basis
        sigma = _calibrate(real[rows], noise, target)
        return cls(real, basis, sigma, target)

    def derive(self, count: int, seed: int) -> np.ndarray:
        """`count` derived vectors, each from a uniformly drawn real source."""
        rng = np.random.default_rng(seed)
        out = np.empty((count, self.real.shape[1]), dtype=np.float32)
        for start in range(0, count, CHUNK):
            n = min(CHUNK, count - start)
            sources = rng.integers(0, len(self.real), size=n)
            noise = rng.standard_normal((n, self.basis.shape[0])).astype(np.float32) @ self.basis
            out[start : start + n] = _normalize(self.real[sources] + self.sigma * noise)
        return out

    def vectors(self, size: int, seed: int) -> np.ndarray:
        """`size` vectors: real ones first (all of them, or a random subset), then derived."""
        if size <= len(self.real):
            rows = np.sort(np.random.default_rng(seed).choice(len(self.real), size, replace=False))
            return np.ascontiguousarray(self.real[rows])
        return np.concatenate([self.real, self.derive(size - len(self.real), seed)])


def _calibrate(sources: np.ndarray, noise: np.ndarray, target: float) -> float:
    """The sigma whose median cosine(source, derived) is `target` (bisection; monotone)."""
    low, high = 0.0, 64.0
    for _ in range(60):
        sigma = (low + high) / 2
        derived = _normalize(sources + sigma * noise)
        median = float(np.median(np.sum(sources * derived, axis=1)))
        if median > target:
            low = sigma
        else:
            high = sigma
    return (low + high) / 2
