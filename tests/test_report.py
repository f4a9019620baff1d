"""The HTML report on the sample corpus, opened in headless Chromium (Debian's build)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recommender.cli import app
from recommender.sample import sample_corpus

runner = CliRunner()
SAMPLE = sample_corpus()
QRELS = SAMPLE.with_name("qrels.tsv")
QUERIES = SAMPLE.with_name("queries.tsv")
CHROMIUM = shutil.which("chromium")


@pytest.fixture()
def report(tmp_path: Path, sample_index: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RECOMMENDER_MODELS_DIR", str(model_dir.parent))
    monkeypatch.setenv("RECOMMENDER_CACHE_PATH", str(tmp_path / "cache.sqlite"))
    runs = []
    for stage in ("ranked", "final"):
        path = tmp_path / f"pipeline-{stage}.tsv"
        args = ["eval", "run", "--input", str(SAMPLE), "--queries", str(QUERIES), "--out"]
        r = runner.invoke(
            app, [*args, str(path), "--index", str(sample_index), "--stage", stage, "--k", "10"]
        )
        assert r.exit_code == 0, r.output
        runs.append(path)
    html = tmp_path / "report.html"
    run_args = [a for p in runs for a in ("--run", str(p))]
    args = ["eval", "report", *run_args, "--qrels", str(QRELS), "--input", str(SAMPLE)]
    r = runner.invoke(app, [*args, "--out", str(html), "--k", "5"])
    assert r.exit_code == 0, r.output
    score = runner.invoke(app, ["eval", "score", "--run", str(runs[0]), "--qrels", str(QRELS)])
    return html, json.loads(score.output)


def test_report_is_self_contained_and_drills_down(report, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not on PATH")
    from playwright.sync_api import sync_playwright

    html, ranked_scores = report
    text = html.read_text(encoding="utf-8")
    assert "<script src" not in text and "<link" not in text
    articles = {json.loads(line)["id"]: json.loads(line) for line in SAMPLE.open(encoding="utf-8")}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1300, "height": 1800})
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(html.as_uri())
        assert all(u.startswith(("file:", "data:")) for u in requested), requested

        rows = page.locator("table.summary tbody tr")
        assert rows.count() == 2
        assert rows.nth(0).locator("td").nth(0).inner_text() == "pipeline-ranked"
        shown = float(rows.nth(0).locator("td").nth(1).inner_text().split()[0])
        assert shown == pytest.approx(ranked_scores["ndcg@10"], abs=1e-4)
        assert "p=" in rows.nth(1).locator("td").nth(1).inner_text()
        charts = page.locator(".charts img")
        assert charts.count() == 2
        assert all(charts.nth(i).evaluate("i => i.naturalWidth") > 100 for i in range(2))

        details = page.locator("details.query")
        assert details.count() == 173
        first = details.nth(0)
        query_id = first.locator("summary .qid").inner_text()
        assert articles[query_id]["title"] in first.locator("summary").inner_text()
        assert not first.locator("ol.items").first.is_visible()
        first.locator("summary").click()
        lists = first.locator("ol.items")
        assert lists.count() == 2 and lists.first.is_visible()
        item = lists.first.locator("li").first
        assert item.locator(".grade").count() == 1
        assert "score " in item.inner_text()
        assert page.locator(".grade.unjudged").count() > 0
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(tmp_path / "report.png"))
        target = os.environ.get("REPORT_SCREENSHOT")
        if target:
            shutil.copyfile(tmp_path / "report.png", target)

        page.fill("#filter", query_id.lower())
        assert page.locator("details.query:not([hidden])").count() == 1
        browser.close()
