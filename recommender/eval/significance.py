"""Is a difference between two runs real? Paired tests over the queries, per metric (scipy).

The default is the paired randomization (sign-flip permutation) test on the mean per-query
difference, two-sided: exact when the queries that differ are few enough (2^n <= resamples),
otherwise 10,000 seeded random sign flips; Smucker, Allan and Carterette (2007) found it the test
to prefer for IR metrics. The paired t-test is the alternative. A query whose metric did not move
changes nothing under a sign flip, so the randomization test runs over the queries that moved
(the p-value is the same, and the exact case is reached more often). No correction is made for
testing several metrics at once: read a lone p just under 0.05 among many with care.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from scipy import stats

from recommender.eval.files import Record
from recommender.eval.metrics import PerQuery

Test = Literal["randomization", "t-test"]
TESTS: tuple[Test, ...] = ("randomization", "t-test")
ALPHA = 0.05
RESAMPLES = 10_000
TEST_NAMES = {
    "randomization": "paired randomization test (sign flips), two-sided",
    "t-test": "paired t-test, two-sided",
}


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(np.mean(x, axis=axis))


def paired_p_value(
    baseline: Sequence[float],
    other: Sequence[float],
    test: Test = "randomization",
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> float:
    """Two-sided p-value of the mean difference `other - baseline` over paired queries."""
    deltas = np.asarray(other, dtype=float) - np.asarray(baseline, dtype=float)
    moved = deltas[np.abs(deltas) > 1e-12]
    if len(moved) == 0:
        return 1.0
    if len(moved) == 1 and test == "randomization":  # its two sign flips are equally extreme
        return 1.0
    if test == "t-test":
        if np.ptp(deltas) == 0.0:  # every query moved by the same amount: no variance
            return 0.0
        return float(stats.ttest_rel(other, baseline).pvalue)
    result = stats.permutation_test(
        (moved,),
        _mean,
        permutation_type="samples",
        vectorized=True,
        n_resamples=resamples,
        alternative="two-sided",
        batch=1000,
        rng=seed,
    )
    return float(min(1.0, result.pvalue))


def compare(
    values: Mapping[str, PerQuery],
    metrics: Sequence[str],
    test: Test = "randomization",
    seed: int = 0,
) -> list[Record]:
    """For each run after the first and each metric: the mean difference to the first run over
    the queries both have, its p-value, and how many queries improved or got worse."""
    names = list(values)
    if not names:
        return []
    base_name, base = names[0], values[names[0]]
    records: list[Record] = []
    for name in names[1:]:
        run = values[name]
        for metric in metrics:
            queries = [q for q in base if metric in base[q] and metric in run.get(q, {})]
            a = [base[q][metric] for q in queries]
            b = [run[q][metric] for q in queries]
            deltas = np.asarray(b) - np.asarray(a)
            p = paired_p_value(a, b, test, seed=seed) if queries else 1.0
            records.append(
                {
                    "run": name,
                    "baseline": base_name,
                    "metric": metric,
                    "value": float(np.mean(b)) if queries else 0.0,
                    "baseline_value": float(np.mean(a)) if queries else 0.0,
                    "delta": float(np.mean(deltas)) if queries else 0.0,
                    "p_value": p,
                    "significant": p < ALPHA,
                    "test": TEST_NAMES[test],
                    "queries": len(queries),
                    "improved": int(np.sum(deltas > 1e-12)),
                    "worse": int(np.sum(deltas < -1e-12)),
                }
            )
    return records


def deltas(values: Mapping[str, PerQuery], metrics: Sequence[str]) -> list[Record]:
    """Per query, metric and run: the value, the first run's value and the difference, the
    largest losses first within each run and metric."""
    names = list(values)
    if not names:
        return []
    base = values[names[0]]
    records: list[Record] = []
    for name in names[1:]:
        run = values[name]
        for metric in metrics:
            rows = [
                {
                    "query_id": q,
                    "metric": metric,
                    "run": name,
                    "baseline": names[0],
                    "value": run[q][metric],
                    "baseline_value": base[q][metric],
                    "delta": run[q][metric] - base[q][metric],
                }
                for q in base
                if metric in base[q] and metric in run.get(q, {})
            ]
            records += sorted(rows, key=lambda r: (float(r["delta"]), str(r["query_id"])))
    return records


def markdown(
    summaries: Mapping[str, Record],
    records: Sequence[Record],
    metrics: Sequence[str],
) -> str:
    """A Markdown table of the runs: the first run's means, then each run's mean with its
    difference to the first, the p-value and `*` where p < 0.05; the test named below."""
    names = list(summaries)
    found = {(r["run"], r["metric"]): r for r in records}
    lines = ["| run | " + " | ".join(metrics) + " |", "| --- |" + " ---: |" * len(metrics)]
    for name in names:
        cells = []
        for metric in metrics:
            value = float(summaries[name][metric])
            r = found.get((name, metric))
            if r is None:
                cells.append(f"{value:.4f}")
                continue
            mark = "*" if r["significant"] else ""
            cells.append(
                f"{value:.4f} ({float(r['delta']):+.4f}, p={float(r['p_value']):.4f}){mark}"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if records:
        lines.append("")
        lines.append(
            f"(difference to {names[0]}, p) per metric over the queries both runs score; "
            f"* p < {ALPHA}: {records[0]['test']}, no correction for multiple metrics"
        )
    return "\n".join(lines)
