"""From recall measurements to the index defaults: HNSW parameters and the flat/HNSW threshold.

HNSW parameters: at the largest measured size (recall falls as the index grows), the setting
with recall@10 >= RECALL_TARGET and the lowest median search time; ties go to less memory.
Threshold: exact search is preferred while it is no slower, since its recall is 1.0 by
definition. Flat time grows linearly with size, so a least-squares line through the flat
medians is compared with the chosen HNSW setting's medians (interpolated in log size); the
threshold is the first size where the line reaches HNSW, rounded to two significant digits.
It is decided on the search the hybrid ranking makes (k = ranking pool, `pool_search_ms`); the
crossover at k=10 is reported beside it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from recommender.storage.vectors import VectorIndexConfig

RECALL_TARGET = 0.99


def _p50(setting: dict[str, Any], key: str = "search_ms") -> float:
    return float(setting[key]["p50"])


def pick_hnsw(settings: list[dict[str, Any]]) -> dict[str, Any] | None:
    hnsw = [s for s in settings if s["kind"] == "hnsw"]
    if not hnsw:
        return None
    largest = max(s["size"] for s in hnsw)
    at_largest = [s for s in hnsw if s["size"] == largest]
    good = [s for s in at_largest if s["recall@10"] >= RECALL_TARGET]
    if not good:
        return max(at_largest, key=lambda s: (s["recall@10"], -_p50(s)))
    return min(good, key=lambda s: (_p50(s), s["index_bytes"]))


def crossover(flat: list[tuple[int, float]], hnsw: list[tuple[int, float]]) -> int | None:
    """First size where the fitted flat line reaches the HNSW time, or None if it never does."""
    if len(flat) < 2 or not hnsw:
        return None
    sizes = np.asarray([n for n, _ in flat], dtype=np.float64)
    slope, intercept = np.polyfit(sizes, [t for _, t in flat], 1)
    log_sizes = np.log([n for n, _ in hnsw])
    hnsw_ms = [t for _, t in hnsw]
    for n in np.geomspace(100, 10 * max(sizes.max(), max(n for n, _ in hnsw)), 400):
        if intercept + slope * n >= float(np.interp(math.log(n), log_sizes, hnsw_ms)):
            digits = 1 - math.floor(math.log10(n))
            return int(round(n, digits))
    return None


def recommend(settings: list[dict[str, Any]], current: VectorIndexConfig) -> dict[str, Any]:
    chosen = pick_hnsw(settings)
    if chosen is None:
        return {"note": "no HNSW setting measured"}
    same = [
        s
        for s in settings
        if s["kind"] == "hnsw" and s["m"] == chosen["m"] and s["ef_search"] == chosen["ef_search"]
    ]
    flats = [s for s in settings if s["kind"] == "flat"]
    flat = sorted((s["size"], _p50(s)) for s in flats)
    flat_pool = sorted((s["size"], _p50(s, "pool_search_ms")) for s in flats)
    return {
        "hnsw_threshold": crossover(
            flat_pool, sorted((s["size"], _p50(s, "pool_search_ms")) for s in same)
        ),
        "hnsw_threshold_at_k10": crossover(flat, sorted((s["size"], _p50(s)) for s in same)),
        "hnsw_m": chosen["m"],
        "hnsw_ef_search": chosen["ef_search"],
        "hnsw_ef_construction": chosen["ef_construction"],
        "recall_target": RECALL_TARGET,
        "target_met": chosen["recall@10"] >= RECALL_TARGET,
        "evidence": {
            "size": chosen["size"],
            "recall@10": chosen["recall@10"],
            "search_ms": chosen["search_ms"],
            "by_size": {
                str(s["size"]): {"recall@10": s["recall@10"], "p50_ms": _p50(s)} for s in same
            },
            "flat_p50_ms": {str(n): t for n, t in flat},
            "pool_p50_ms": {str(s["size"]): _p50(s, "pool_search_ms") for s in same},
            "flat_pool_p50_ms": {str(n): t for n, t in flat_pool},
        },
        "current": {
            "hnsw_threshold": current.hnsw_threshold,
            "hnsw_m": current.hnsw_m,
            "hnsw_ef_search": current.hnsw_ef_search,
            "hnsw_ef_construction": current.hnsw_ef_construction,
            "exact_below_allowed": current.exact_below_allowed,
        },
    }
