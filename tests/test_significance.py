"""Paired significance tests against answers worked out on paper."""

from __future__ import annotations

import math

import pytest

from recommender.eval.significance import compare, deltas, paired_p_value


def t_sf_two_sided_df3(t: float) -> float:
    """Two-sided p of Student's t with 3 degrees of freedom, in closed form."""
    x = t / math.sqrt(3)
    cdf = 0.5 + (x / (1 + x * x) + math.atan(x)) / math.pi
    return 2 * (1 - cdf)


def test_randomization_test_is_exact_for_few_moved_queries() -> None:
    # every moved query improved: only the all-plus and all-minus sign patterns are as extreme
    base = [0.5] * 10
    six = [*base[:4], 0.6, 0.7, 0.55, 0.9, 0.51, 0.8]
    five = [*base[:5], 0.6, 0.7, 0.55, 0.9, 0.51]
    assert paired_p_value(base, six) == pytest.approx(2 / 2**6)  # 0.03125 < 0.05
    assert paired_p_value(base, five) == pytest.approx(2 / 2**5)  # 0.0625 > 0.05
    assert paired_p_value(base, base) == 1.0


def test_randomization_p_counts_sign_patterns() -> None:
    # deltas +3 +2 +1 -1: sums >= 5 in absolute value: {+3+2+1-1}=5, {+3+2+1+1}=7, {+3+2-1+1}=5
    # and their mirrors -> 6 of 16 patterns
    assert paired_p_value([0, 0, 0, 0], [3, 2, 1, -1]) == pytest.approx(6 / 16)


def test_paired_t_test_matches_the_closed_form() -> None:
    base = [0.0, 0.0, 0.0, 0.0]
    other = [1.0, 2.0, 3.0, 4.0]  # mean 2.5, sd sqrt(5/3), t = 2.5 / (sd / 2)
    t = 2.5 / (math.sqrt(5 / 3) / 2)
    assert paired_p_value(base, other, "t-test") == pytest.approx(t_sf_two_sided_df3(t))


def test_compare_and_deltas_records() -> None:
    values = {
        "a": {f"q{i}": {"m": 0.5} for i in range(8)},
        "b": {f"q{i}": {"m": 0.5 + (0.1 if i < 6 else 0.0)} for i in range(8)},
    }
    (record,) = compare(values, ["m"])
    assert record["run"] == "b" and record["baseline"] == "a"
    assert record["delta"] == pytest.approx(0.6 / 8)
    assert record["p_value"] == pytest.approx(2 / 2**6) and record["significant"]
    assert (record["improved"], record["worse"], record["queries"]) == (6, 0, 8)
    assert "randomization" in record["test"]
    rows = deltas(values, ["m"])
    assert len(rows) == 8
    assert [r["query_id"] for r in rows if r["delta"] > 0] == [f"q{i}" for i in range(6)]


def test_one_moved_query_is_never_significant() -> None:
    """scipy refuses a permutation test of one observation; both its sign flips are as extreme."""
    assert paired_p_value([0.5, 0.5, 0.5], [0.5, 0.5, 0.9]) == 1.0
