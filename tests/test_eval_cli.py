"""The eval harness from the command line, on the sample corpus and its judgements."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recommender.cli import app
from recommender.sample import sample_corpus

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
    assert list(rows[0]) == ["query_id", "doc_id", "rank", "score", "reason", "parts"]
    assert all(r["reason"] and json.loads(r["parts"])["dense"] for r in rows)
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
    assert "alpha_ndcg@10" in table.output
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
    assert r.exit_code == 2 and "Invalid value for '--method'" in r.output
    assert "'word2vec' is not one of" in r.output
    r = runner.invoke(app, [*args, "-k", "51", "--index", str(sample_index)])
    assert r.exit_code == 2 and "Invalid value for '-k' / '--k'" in r.output
    r = runner.invoke(app, ["eval", "score", "--run", str(env / "none.tsv"), "--qrels", str(QRELS)])
    assert r.exit_code == 1 and f"file not found: {env / 'none.tsv'}" in r.output
    bad = env / "bad-qrels.tsv"
    bad.write_text("query_id\tdoc_id\tgrade\nq1\td1\t7\n", encoding="utf-8")
    run = env / "run.tsv"
    run.write_text("query_id\tdoc_id\trank\tscore\nq1\td1\t1\t0.5\n", encoding="utf-8")
    r = runner.invoke(app, ["eval", "score", "--run", str(run), "--qrels", str(bad)])
    assert r.exit_code == 1 and f"{bad}:2: field 'grade' must be 0, 1, 2 or 3" in r.output
    r = runner.invoke(app, [*args[:2], "--input", str(env / "a.txt"), *args[4:]])
    assert r.exit_code == 1 and f"file not found: {env / 'a.txt'}" in r.output
    (env / "a.txt").write_text("id\n")
    r = runner.invoke(app, [*args[:2], "--input", str(env / "a.txt"), *args[4:]])
    assert r.exit_code == 1 and f"{env / 'a.txt'}: unknown input format '.txt'" in r.output
    assert isinstance(r.exception, SystemExit)
    report = ["eval", "report", "--run", str(run), "--qrels", str(QRELS), "-o", str(env / "r.html")]
    r = runner.invoke(app, [*report, "--input", str(env / "a.txt")])
    assert r.exit_code == 1 and f"{env / 'a.txt'}: unknown input format '.txt'" in r.output
    assert isinstance(r.exception, SystemExit) and not (env / "r.html").exists()


def _manifest(index: Path) -> str:
    """What identifies an index's content on disk: its current generation and its store."""
    current = index / (index / "CURRENT").read_text().strip()
    store = current / "store.sqlite"
    return f"{current.name} {store.stat().st_size} {store.stat().st_mtime_ns}"


def test_eval_run_refuses_to_rebuild_over_another_index(
    env: Path, sample_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _manifest(sample_index)
    subset = env / "subset.jsonl"
    subset.write_text("".join(SAMPLE.read_text(encoding="utf-8").splitlines(True)[:20]))
    base = ["eval", "run", "--queries", str(QUERIES), "--out", str(env / "x.tsv")]
    r = runner.invoke(app, [*base, "--input", str(subset), "--index", str(sample_index)])
    assert r.exit_code == 1
    assert "holds 173 articles" in r.output and "refusing to rebuild over --index" in r.output
    monkeypatch.setenv("RECOMMENDER_MODEL", "another-model")
    r = runner.invoke(app, [*base, "--input", str(SAMPLE), "--index", str(sample_index)])
    assert r.exit_code == 1
    assert "built with model 'multilingual-e5-small'" in r.output and "refusing" in r.output
    assert _manifest(sample_index) == before
    stray = env / "not-an-index"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    r = runner.invoke(app, [*base, "--input", str(SAMPLE), "--index", str(stray)])
    assert r.exit_code == 1 and "no index at" in r.output
    assert (stray / "notes.txt").read_text() == "mine"


def _tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _write_tsv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)


def _first_hit_dropped(run: Path, out: Path, queries: list[str]) -> Path:
    """A copy of `run` in which each of `queries` loses its first item (moved to the end)."""
    rows = _tsv(run)
    for q in queries:
        mine = [r for r in rows if r["query_id"] == q]
        mine[0]["rank"] = "99"
    _write_tsv(out, rows)
    return out


def _top_relevant_queries(run: Path, n: int) -> list[str]:
    relevant = {(r["query_id"], r["doc_id"]) for r in _tsv(QRELS)}
    firsts = [(r["query_id"], r["doc_id"]) for r in _tsv(run) if r["rank"] == "1"]
    return [q for q, d in firsts if (q, d) in relevant][:n]


def test_compare_marks_a_known_significant_difference(env: Path, sample_index: Path) -> None:
    base = _run(env, sample_index, "pipeline")
    chosen = _top_relevant_queries(base, 6)
    # losing a relevant first item lowers nDCG@10 of exactly those queries: with n of them
    # moved, the exact randomization p-value is 2 / 2^n
    six = _first_hit_dropped(base, env / "six.tsv", chosen)
    five = _first_hit_dropped(base, env / "five.tsv", chosen[:5])
    deltas = env / "deltas.tsv"
    args = ["eval", "score", "--qrels", str(QRELS), "--compare", "--deltas", str(deltas)]
    r = runner.invoke(app, [*args, "--run", str(base), "--run", str(six), "--run", str(five)])
    assert r.exit_code == 0, r.output
    rows = {line.split("|")[1].strip(): line for line in r.output.splitlines() if "|" in line}
    assert "p=0.0312)*" in rows["six"] and "p=0.0625)" in rows["five"]
    assert "p=0.0625)*" not in rows["five"]
    assert "paired randomization test" in r.output
    moved = [d for d in _tsv(deltas) if d["metric"] == "ndcg@10" and d["run"] == "six"]
    assert {d["query_id"] for d in moved if float(d["delta"]) < 0} == set(chosen)
    assert not [d for d in moved if float(d["delta"]) > 0]

    js = runner.invoke(app, [*args, "--run", str(base), "--run", str(six), "--json"])
    records = json.loads(js.output)["compare"]
    ndcg = next(c for c in records if c["metric"] == "ndcg@10")
    assert ndcg["p_value"] == pytest.approx(2 / 2**6) and ndcg["worse"] == 6
    t = runner.invoke(app, [*args, "--run", str(base), "--run", str(six), "--test", "t-test"])
    assert t.exit_code == 0 and "paired t-test" in t.output


def _read_pool(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # spreadsheets read UTF-8 with a byte-order mark
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_pool_round_trip_fills_judgements_and_changes_the_score(
    env: Path, sample_index: Path
) -> None:
    runs = [_run(env, sample_index, "dense"), _run(env, sample_index, "bm25")]
    truth = _tsv(QRELS)
    # a judge who has seen only half the queries: the rest's judgements are withheld
    seen = sorted({r["query_id"] for r in truth})[::2]
    partial = env / "partial.tsv"
    _write_tsv(partial, [r for r in truth if r["query_id"] in seen])
    run_args = [a for p in runs for a in ("--run", str(p))]
    pool_csv = env / "pool.csv"
    args = ["eval", "pool", *run_args, "--qrels", str(partial), "--input", str(SAMPLE)]
    r = runner.invoke(app, [*args, "--depth", "5", "--out", str(pool_csv)])
    assert r.exit_code == 0, r.output
    pooled = _read_pool(pool_csv)
    judged = {(q["query_id"], q["doc_id"]) for q in _tsv(partial)}
    tops = {(x["query_id"], x["doc_id"]) for p in runs for x in _tsv(p) if int(x["rank"]) <= 5}
    pairs = [(p["query_id"], p["doc_id"]) for p in pooled]
    assert len(pairs) == len(set(pairs)) and set(pairs) == tops - judged
    assert pairs != sorted(pairs)  # shuffled, not in run or id order
    assert all(p["grade"] == "" for p in pooled)
    articles = {json.loads(line)["id"]: json.loads(line) for line in SAMPLE.open(encoding="utf-8")}
    first = pooled[0]
    assert first["query_title"] == articles[first["query_id"]]["title"]  # Cyrillic intact
    assert first["doc_date"] and first["doc_source"] and first["doc_lead"]
    assert not {"rank", "score", "run"} & set(first)  # blind

    grade = {(t["query_id"], t["doc_id"]): t["grade"] for t in truth}
    for p in pooled:
        p["grade"] = grade.get((p["query_id"], p["doc_id"]), "0")
    filled = env / "pool-judged.csv"
    with filled.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(pooled[0]))
        writer.writeheader()
        writer.writerows(pooled)

    def scores(*qrels: Path) -> dict[str, float]:
        qargs = [a for q in qrels for a in ("--qrels", str(q))]
        res = runner.invoke(app, ["eval", "score", "--run", str(runs[0]), *qargs])
        assert res.exit_code == 0, res.output
        return dict(json.loads(res.output))

    before, after = scores(partial), scores(partial, filled)
    assert before["scored"] == len({q for q in seen if q in {t["query_id"] for t in truth}})
    assert after["scored"] > before["scored"]  # queries the pool judged become scorable
    assert after["ndcg@10"] != before["ndcg@10"]
    # nothing is left to judge: a second pool over the merged judgements is empty
    again = env / "pool2.csv"
    merged = ["--qrels", str(partial), "--qrels", str(filled)]
    r = runner.invoke(
        app,
        ["eval", "pool", *run_args, *merged, "--input", str(SAMPLE), "--out", str(again)],
    )
    assert r.exit_code == 0, r.output
    assert _read_pool(again) == []


def test_default_eval_indexes_of_same_named_inputs_differ(tmp_path: Path) -> None:
    from recommender.eval.runs import default_index_dir

    a, b = tmp_path / "a" / "articles.jsonl", tmp_path / "b" / "articles.jsonl"
    assert default_index_dir(a) != default_index_dir(b)
    assert default_index_dir(a) == default_index_dir(tmp_path / "a" / ".." / "a" / "articles.jsonl")
    assert default_index_dir(a).name.startswith("eval-articles-")
