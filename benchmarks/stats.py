"""Latency summaries: percentiles in milliseconds from samples in seconds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PERCENTILES = (50, 95, 99)


def latency_ms(samples_s: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99, mean and max in milliseconds, and the sample count."""
    if not samples_s:
        return {"n": 0}
    ms = np.asarray(samples_s, dtype=np.float64) * 1e3
    summary = {f"p{p}": round(float(np.percentile(ms, p)), 4) for p in PERCENTILES}
    summary |= {"mean": round(float(ms.mean()), 4), "max": round(float(ms.max()), 4)}
    return summary | {"n": len(ms)}
