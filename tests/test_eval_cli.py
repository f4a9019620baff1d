"""The eval harness from the command line, on the sample corpus and its judgements."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recommender.cli import app, sample_corpus

runner = CliRunner()
SAMPLE = sample_corpus()
QRELS = SAMPLE.with_name("qrels.tsv")
QUERIES = SAMPLE.with_name("queries.tsv")


@pytest.fixture()
def env(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECOMMENDER_MODELS_DIR", str(model_dir.parent))
    monkeypatch.setenv("RECOMMENDER_CACHE_PATH", str(tmp_path / "cache.sqlite"))
    return tmp_path


def _run(env: Path, index: Path, method: str, stage: str = "ranked") -> Path:
    out = env / f"{method}-{stage}.tsv"
    args = ["eval", "run", "--input", str(SAMPLE), "--queries", str(QUERIES), "--out", str(out)]
    result = runner.invoke(
        app, [*args, "--index", str(index), "--method", method, "--stage", stage, "--k", "10"]
    )
    assert result.exit_code == 0, result.output
    return out


def test_eval_run_and_score_every_method(env: Path, sample_index: Path) -> None:
    runs = {m: _run(env, sample_index, m) for m in ("pipeline", "dense", "tfidf", "bm25")}
    with runs["pipeline"].open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert list(rows[0]) == ["query_id", "doc_id", "rank", "score"]
    assert {r["query_id"] for r in rows} == set(QUERIES.read_text().split()[1:])
    assert all(r["query_id"] != r["doc_id"] for r in rows)
    score = runner.invoke(
        app, ["eval", "score", "--run", str(runs["pipeline"]), "--qrels", str(QRELS)]
    )
    assert score.exit_code == 0, score.output
    metrics = json.loads(score.output)
    assert metrics["scored"] == 113 and metrics["queries"] == 173
    assert metrics["ndcg@10"] > 0.9 and metrics["recall@5_grade3"] > 0.9
    assert set(metrics) >= {"recall@1", "recall@5", "recall@10", "recall@50"}

    chart = env / "compare.png"
    table = runner.invoke(
        app,
        ["eval", "score", "--qrels", str(QRELS), "--chart", str(chart)]
        + [arg for path in runs.values() for arg in ("--run", str(path))],
    )
    assert table.exit_code == 0, table.output
    assert "| pipeline-ranked |" in table.output and "| bm25-ranked |" in table.output
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_final_stage_run_has_no_reprint_of_the_query(env: Path, sample_index: Path) -> None:
    path = _run(env, sample_index, "pipeline", "final")
    grades: dict[tuple[str, str], int] = {}
    with QRELS.open() as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            grades[(r["query_id"], r["doc_id"])] = int(r["grade"])
    with path.open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert rows and not [r for r in rows if grades.get((r["query_id"], r["doc_id"])) == 3]


def test_eval_errors_name_the_problem(env: Path, sample_index: Path) -> None:
    args = ["eval", "run", "--input", str(SAMPLE), "--queries", str(QUERIES), "--out", "x.tsv"]
    r = runner.invoke(app, [*args, "--method", "word2vec", "--index", str(sample_index)])
    assert r.exit_code == 1 and "--method must be" in r.output
    r = runner.invoke(app, ["eval", "score", "--run", str(env / "none.tsv"), "--qrels", str(QRELS)])
    assert r.exit_code == 1 and "file not found" in r.output
