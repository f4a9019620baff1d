"""A judged supplement to the story ruler names an earlier happening by one of its reports
(`@DOC_ID`), so that its files hold ids, grades and its own labels only."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.eval.files import load_qrels
from recommender.eval.metrics import per_query

STORIES = "query_id\tdoc_id\tgrade\thappening\nr\tc1\t3\tA\nr\th1a\t2\tcourt-hearing\nr\tf\t1\t-\n"


def test_a_reference_takes_the_earlier_label_and_counts_as_one_happening(tmp_path: Path) -> None:
    stories = tmp_path / "stories.tsv"
    stories.write_text(STORIES)
    additions = tmp_path / "additions.tsv"
    additions.write_text(
        "query_id\tdoc_id\tgrade\thappening\nr\tn1\t2\t@h1a\nr\tn2\t2\tnew-1\nr\tn3\t3\t@c1\n"
    )
    qrels = load_qrels(stories, additions)
    assert qrels.happenings["r"] == {
        "c1": "A",
        "h1a": "court-hearing",
        "n1": "court-hearing",
        "n2": "new-1",
        "n3": "A",
    }
    r = per_query({"r": ["h1a", "n1", "n2", "n3", "f"]}, qrels, ["r"])["r"]
    assert r["useful_distinct@5"] == 2.0
    assert r["copies@5"] == 1.0


def test_a_reference_to_an_unlabelled_article_names_the_line(tmp_path: Path) -> None:
    stories = tmp_path / "stories.tsv"
    stories.write_text(STORIES)
    additions = tmp_path / "additions.tsv"
    additions.write_text("query_id\tdoc_id\tgrade\thappening\nr\tn1\t2\tnew-1\nr\tn2\t2\t@f\n")
    with pytest.raises(ValueError, match=r"additions\.tsv:3: field 'happening' refers to @f"):
        load_qrels(stories, additions)
