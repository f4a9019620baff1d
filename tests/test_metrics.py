"""nDCG and recall on hand-made runs whose values can be worked out on paper."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from recommender.eval.files import RunItem, doc_ids, load_qrels, load_run, read_queries, write_run
from recommender.eval.metrics import (
    evaluate,
    markdown_table,
    per_query,
    recall,
    stories,
    summarize,
    write_chart,
)

QRELS = {
    "q1": {"a": 3, "b": 2, "c": 2},
    "q2": {"d": 2},
    "q3": {"q3": 3, "z": 1},
}


def _ndcg(ranked: list[str], grades: dict[str, int]) -> float:
    return per_query({"q": ranked}, {"q": grades}, ["q"])["q"]["ndcg@10"]


def test_ndcg_perfect_and_graded() -> None:
    grades = {"a": 3, "b": 2}
    assert _ndcg(["a", "b", "x"], grades) == pytest.approx(1.0)
    swapped = (2 + 3 / math.log2(3)) / (3 + 2 / math.log2(3))
    assert _ndcg(["b", "a"], grades) == pytest.approx(swapped)
    assert _ndcg(["x", "y"], grades) == 0.0


def test_rank_order_counts_not_the_score() -> None:
    """The final stage's fallback items score below later ones: the rank is the order."""
    run = {"q": [RunItem("x", 0.9), RunItem("a", 0.1)]}
    assert _ndcg(doc_ids(run)["q"], {"a": 2}) == pytest.approx(1 / math.log2(3))


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
    items = [RunItem("a", 0.9, "shared: Шойгу", {"dense": 0.8, "lexical": 0.25}), RunItem("b", 0.5)]
    write_run(run_path, {"q1": items, "q2": [RunItem("d", 0.7)]})
    (tmp_path / "qrels.tsv").write_text("query_id\tdoc_id\tgrade\nq1\ta\t3\nq2\td\t2\n")
    (tmp_path / "queries.tsv").write_text("query_id\nq1\nq2\n")
    loaded = load_run(run_path)
    assert loaded["q1"][0] == items[0]
    assert doc_ids(loaded) == {"q1": ["a", "b"], "q2": ["d"]}
    qrels = load_qrels(tmp_path / "qrels.tsv")
    assert qrels == {"q1": {"a": 3}, "q2": {"d": 2}}
    result = evaluate(doc_ids(loaded), qrels, read_queries(tmp_path / "queries.tsv"))
    assert result["ndcg@10"] == pytest.approx(1.0)
    assert result["recall@10"] == pytest.approx(1.0)


def test_old_four_column_runs_still_read(tmp_path: Path) -> None:
    path = tmp_path / "old.tsv"
    path.write_text("query_id\tdoc_id\trank\tscore\nq1\tb\t2\t0.5\nq1\ta\t1\t0.9\n")
    assert load_run(path) == {"q1": [RunItem("a", 0.9), RunItem("b", 0.5)]}


def test_bad_files_name_file_line_and_field(tmp_path: Path) -> None:
    run = tmp_path / "run.tsv"
    run.write_text("query_id\tdoc_id\trank\tscore\nq1\ta\tfirst\t0.9\n")
    with pytest.raises(ValueError, match=r"run.tsv:2: field 'rank'"):
        load_run(run)
    headless = tmp_path / "qrels.tsv"
    headless.write_text("q1\ta\t3\n")
    with pytest.raises(ValueError, match=r"qrels.tsv: missing column\(s\) query_id, doc_id, grade"):
        load_qrels(headless)
    short = tmp_path / "short.tsv"
    short.write_text("query_id\tdoc_id\trank\tscore\nq1\ta\t1\t0.9\nq1\n")
    with pytest.raises(ValueError, match=r"short.tsv:3: field 'doc_id' is empty or missing"):
        load_run(short)
    bad = tmp_path / "bad.tsv"
    bad.write_text("query_id\tdoc_id\tgrade\nq1\ta\t3\nq1\tb\tsame\n")
    with pytest.raises(ValueError, match=r"bad.tsv:3: field 'grade' must be 0, 1, 2 or 3"):
        load_qrels(bad)


def test_later_qrels_override_earlier_and_blank_pool_grades_are_skipped(tmp_path: Path) -> None:
    first = tmp_path / "qrels.tsv"
    first.write_text("query_id\tdoc_id\tgrade\nq1\ta\t2\nq1\tb\t2\n")
    pool = tmp_path / "pool.csv"
    pool.write_text(
        "pair,query_id,doc_id,grade,doc_title\n1,q1,b,0,Б\n2,q1,c,3,В\n3,q1,d,,Г\n",
        encoding="utf-8-sig",
    )
    assert load_qrels(first, pool) == {"q1": {"a": 2, "b": 0, "c": 3}}
    assert load_qrels(pool, first) == {"q1": {"a": 2, "b": 2, "c": 3}}


def test_stories_join_grade_3_pairs_transitively() -> None:
    qrels = {"a1": {"a2": 3, "b1": 2}, "a2": {"a3": 3}, "b1": {"c1": 2}}
    story = stories(qrels)
    assert story["a1"] == story["a2"] == story["a3"]
    assert len({story["a1"], story["b1"], story["c1"]}) == 3


# Query q, of story Q (a re-print q2); relevant: story A (a1-a4, copies), B (b1), C (c1).
STORY_QRELS = {
    "q": {"q2": 3, "a1": 2, "a2": 2, "a3": 2, "a4": 2, "b1": 2, "c1": 2},
    "a1": {"a2": 3, "a3": 3, "a4": 3},
}


def test_novelty_scores_deduplication_higher_where_ndcg_does_not() -> None:
    ranked = ["q2", "a1", "a2", "a3", "a4", "b1", "c1", "x", "y", "z"]
    deduplicated = ["a1", "b1", "c1", "x", "y", "z", "w", "v", "u", "t"]
    r = per_query({"q": ranked}, STORY_QRELS, ["q"])["q"]
    f = per_query({"q": deduplicated}, STORY_QRELS, ["q"])["q"]
    assert r["ndcg@10"] > f["ndcg@10"]
    assert f["alpha_ndcg@10"] > r["alpha_ndcg@10"]
    # by hand (α = 0.5, the re-print q2 earns nothing): ideal a1 b1 c1 a2 a3 a4
    ideal = 1 + 1 / math.log2(3) + 1 / 2 + 0.5 / math.log2(5) + 0.25 / math.log2(6)
    ideal += 0.125 / math.log2(7)
    got = 1 + 1 / math.log2(3) + 1 / 2
    assert f["alpha_ndcg@10"] == pytest.approx(got / ideal, abs=1e-4)
    assert f["story_recall@10"] == pytest.approx(1.0)
    top5 = per_query({"q": ranked[:5]}, STORY_QRELS, ["q"])["q"]
    assert top5["story_recall@10"] == pytest.approx(1 / 3)


def test_a_query_with_only_its_own_story_has_no_novelty_score() -> None:
    values = per_query({"q": ["q2"]}, {"q": {"q2": 3}}, ["q"])
    assert values["q"]["recall@5_grade3"] == 1.0
    assert "alpha_ndcg@10" not in values["q"]


def test_compare_and_chart(tmp_path: Path) -> None:
    runs = {
        "dense": evaluate({"q1": ["a", "b", "c"]}, QRELS, ["q1"]),
        "lexical": evaluate({"q1": ["x", "a"]}, QRELS, ["q1"]),
    }
    table = markdown_table(runs).splitlines()
    assert table[0].startswith("| run | ndcg@10")
    assert table[2].startswith("| dense | 1.0000")
    assert len(table) == 4
    chart = tmp_path / "chart.png"
    write_chart(runs, chart)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# The ruler: query r's own happening (grade 3, `A`: c1, c2), happenings h1 (h1a, h1b: two
# reports of one happening) and h2 (h2a), a filler item f (grade 1), an unrelated u (grade 0).
RULER_TSV = (
    "query_id\tdoc_id\tgrade\thappening\n"
    "r\tc1\t3\tA\nr\tc2\t3\tA\nr\th1a\t2\th1\nr\th1b\t2\th1\nr\th2a\t2\th2\n"
    "r\tf\t1\t-\nr\tu\t0\t-\n"
    "s\tf\t1\t-\n"
)


def _ruler(tmp_path: Path) -> dict[str, dict[str, float]]:
    path = tmp_path / "stories.tsv"
    path.write_text(RULER_TSV)
    qrels = load_qrels(path)
    runs = {
        "r": ["r", "c1", "h1a", "h1b", "f", "x", "h2a"],  # the query itself never counts
        "s": ["f", "y"],
    }
    return per_query(runs, qrels, ["r", "s"])


def test_ruler_counts_each_happening_once_and_the_own_happening_not_at_all(
    tmp_path: Path,
) -> None:
    r = _ruler(tmp_path)["r"]
    # top 5 without the query: c1 (copy) h1a h1b (one happening) f (filler) x (unjudged)
    assert r["useful_distinct@5"] == 1.0
    assert r["happening_recall@5"] == pytest.approx(1 / 2)
    assert r["copies@5"] == 1.0
    assert r["filler@5"] == 1.0
    assert r["unjudged@5"] == 1.0
    assert r["judged@5"] == pytest.approx(4 / 5)
    assert r["judged_p@5"] == pytest.approx(3 / 4)
    # α = 0.5 over h1, h2: ranks 3 (h1a: 1), 4 (h1b: 0.5), 7 (h2a: 1), query dropped first
    dcg = 1 / math.log2(3) + 0.5 / math.log2(4) + 1 / math.log2(7)
    ideal = 1 + 1 / math.log2(3) + 0.5 / math.log2(4)
    assert r["happening_alpha_ndcg@10"] == pytest.approx(dcg / ideal, abs=1e-4)


def test_a_ruled_query_without_relevant_judgements_is_still_on_the_ruler(tmp_path: Path) -> None:
    values = _ruler(tmp_path)
    s = values["s"]
    assert "ndcg@10" not in s and "happening_recall@5" not in s
    assert (s["useful_distinct@5"], s["filler@5"], s["unjudged@5"]) == (0.0, 1.0, 1.0)
    summary = summarize(values, 2)
    assert summary["scored"] == 1 and summary["scored_ruler"] == 2
    assert summary["filler@5"] == pytest.approx(1.0)
    assert summary["useful_distinct@5"] == pytest.approx(0.5)


def test_a_later_row_replaces_the_happening_and_plain_qrels_have_no_ruler(tmp_path: Path) -> None:
    stories = tmp_path / "stories.tsv"
    stories.write_text(RULER_TSV)
    regraded = tmp_path / "pool.tsv"
    regraded.write_text("query_id\tdoc_id\tgrade\thappening\nr\th1b\t2\th3\nr\th2a\t1\t-\n")
    qrels = load_qrels(stories, regraded)
    assert qrels.happenings["r"] == {"c1": "A", "c2": "A", "h1a": "h1", "h1b": "h3"}
    r = per_query({"r": ["h1a", "h1b", "h2a"]}, qrels, ["r"])["r"]
    assert r["useful_distinct@5"] == 2.0
    plain = tmp_path / "plain.tsv"
    plain.write_text("query_id\tdoc_id\tgrade\nr\th1a\t2\n")
    assert "useful_distinct@5" not in per_query({"r": ["h1a"]}, load_qrels(plain), ["r"])["r"]
