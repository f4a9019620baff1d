"""nDCG and recall on hand-made runs whose values can be worked out on paper."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from recommender.eval.metrics import (
    compare,
    evaluate,
    evaluate_files,
    ndcg,
    read_qrels,
    read_run,
    recall,
    write_chart,
    write_run,
)

QRELS = {
    "q1": {"a": 3, "b": 2, "c": 2},
    "q2": {"d": 2},
    "q3": {"q3": 3, "z": 1},
}


def test_ndcg_perfect_and_graded() -> None:
    grades = {"a": 3, "b": 2}
    assert ndcg(["a", "b", "x"], grades) == pytest.approx(1.0)
    swapped = (2 + 3 / math.log2(3)) / (3 + 2 / math.log2(3))
    assert ndcg(["b", "a"], grades) == pytest.approx(swapped)
    assert ndcg(["x", "y"], grades) == 0.0


def test_recall_is_capped_at_k() -> None:
    relevant = {"a", "b", "c"}
    assert recall(["a", "x"], relevant, 1) == 1.0
    assert recall(["a", "x"], relevant, 2) == 0.5
    assert recall(["a", "x", "b"], relevant, 10, capped=False) == pytest.approx(2 / 3)


def test_evaluate_skips_queries_without_relevant_and_ignores_the_query() -> None:
    run = {"q1": ["q1", "a", "x", "b", "c"], "q2": ["x", "y"], "q3": ["q3", "z"]}
    result = evaluate(run, QRELS, ["q1", "q2", "q3"])
    assert result["scored"] == 2
    assert result["skipped"] == 1
    assert "1 of 3 queries" in str(result["note"])
    assert result["recall@1"] == pytest.approx(0.5)
    assert result["recall@5"] == pytest.approx(0.5)
    assert result["recall@5_grade3"] == pytest.approx(1.0)
    assert result["scored_grade3"] == 1
    q1_ndcg = (3 + 2 / 2 + 2 / math.log2(5)) / (3 + 2 / math.log2(3) + 2 / 2)
    assert result["ndcg@10"] == pytest.approx(q1_ndcg / 2)


def test_files_round_trip(tmp_path: Path) -> None:
    run_path = tmp_path / "run.tsv"
    write_run(run_path, {"q1": [("a", 0.9), ("b", 0.5)], "q2": [("d", 0.7)]})
    (tmp_path / "qrels.tsv").write_text("query_id\tdoc_id\tgrade\nq1\ta\t3\nq2\td\t2\n")
    (tmp_path / "queries.tsv").write_text("query_id\nq1\nq2\n")
    assert read_run(run_path) == {"q1": ["a", "b"], "q2": ["d"]}
    assert read_qrels(tmp_path / "qrels.tsv") == {"q1": {"a": 3}, "q2": {"d": 2}}
    result = evaluate_files(run_path, tmp_path / "qrels.tsv", tmp_path / "queries.tsv")
    assert result["ndcg@10"] == pytest.approx(1.0)
    assert result["recall@10"] == pytest.approx(1.0)


def test_compare_and_chart(tmp_path: Path) -> None:
    runs = {
        "dense": evaluate({"q1": ["a", "b", "c"]}, QRELS, ["q1"]),
        "lexical": evaluate({"q1": ["x", "a"]}, QRELS, ["q1"]),
    }
    table = compare(runs).splitlines()
    assert table[0].startswith("| run | ndcg@10")
    assert table[2].startswith("| dense | 1.0000")
    assert len(table) == 4
    chart = tmp_path / "chart.png"
    write_chart(runs, chart)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
