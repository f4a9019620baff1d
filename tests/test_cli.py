"""The command line, run as users run it (typer's runner over the real index and model)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from recommender.api import create_app
from recommender.articles import Article
from recommender.cli import app, options
from recommender.config import Settings
from recommender.engine import Engine
from recommender.eval import runs, significance
from recommender.storage.generations import IndexDir
from recommender.storage.store import Store

runner = CliRunner()


@pytest.fixture()
def env(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECOMMENDER_MODELS_DIR", str(model_dir.parent))
    monkeypatch.setenv("RECOMMENDER_CACHE_PATH", str(tmp_path / "cache.sqlite"))
    return tmp_path


def _jsonl(path: Path, articles: list[Article], *extra: str) -> Path:
    lines = [json.dumps(a.model_dump(mode="json"), ensure_ascii=False) for a in articles]
    path.write_text("\n".join([*lines, *extra]) + "\n", encoding="utf-8")
    return path


def _failed(result: Result, code: int = 1) -> str:
    """The output of a command that failed cleanly: exit `code`, no traceback."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.output


@pytest.fixture()
def small_index(env: Path, sample_articles: list[Article]) -> Path:
    """The first 8 sample articles, indexed by the command line into a fresh directory."""
    index = env / "small"
    src = _jsonl(env / "small.jsonl", sample_articles[:8])
    result = runner.invoke(app, ["index", "build", "-i", str(src), "--index", str(index)])
    assert result.exit_code == 0, result.output
    return index


@pytest.fixture()
def engine_of() -> Iterator[list[Engine]]:
    opened: list[Engine] = []
    yield opened
    for engine in opened:
        engine.close()


def _open(index: Path, opened: list[Engine]) -> Engine:
    engine = Engine(index, Settings(index_dir=index))
    opened.append(engine)
    return engine


def _listed(engine: Engine, article_id: str) -> list[str]:
    stored = engine.stored_list(article_id)
    assert stored is not None
    return [item["id"] for item in orjson.loads(stored)]


def test_index_build_reports_rejects_and_duplicates(
    env: Path, sample_articles: list[Article]
) -> None:
    src = env / "in.jsonl"
    good = [a.model_dump(mode="json") for a in sample_articles[:6]]
    lines = [json.dumps(g, ensure_ascii=False) for g in good]
    lines.insert(2, '{"id": "bad-1", "title": "Без текст"}')
    lines.insert(4, "{broken json")
    dup = dict(good[1], title="Обновено заглавие")
    lines.append(json.dumps(dup, ensure_ascii=False))
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    index = env / "idx"
    result = runner.invoke(app, ["index", "build", "--input", str(src), "--index", str(index)])
    assert result.exit_code == 0, result.output
    assert "indexed 6 articles" in result.output and "2 rejected" in result.output
    assert f"{src}:3: needs a non-empty 'body' or 'lead'" in result.output
    assert f"{src}:5: invalid JSON" in result.output
    assert f"duplicate id '{good[1]['id']}' at lines 2 and 9: keeping line 9" in result.output
    rejects = [json.loads(x) for x in (env / "idx.rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [3, 5]
    engine = Engine(index, Settings())
    assert len(engine) == 6 and engine.article(good[1]["id"]).title == "Обновено заглавие"  # type: ignore[union-attr]
    engine.close()

    stats = runner.invoke(app, ["index", "stats", "--index", str(index), "--json"])
    assert stats.exit_code == 0, stats.output
    summary = json.loads(stats.output)
    assert summary["articles"] == 6 and sum(summary["sections"].values()) == 6


def test_a_csv_row_that_is_not_utf8_is_rejected_by_line(
    env: Path, sample_articles: list[Article]
) -> None:
    a, b = sample_articles[:2]
    src = env / "in.csv"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([(x.id, x.title, x.lead) for x in (a, b)])
    good = buffer.getvalue().encode().splitlines(keepends=True)
    src.write_bytes(b"id,title,lead\n" + good[0] + b"bad-1,T,\xff\xfe lead\n" + good[1])
    index = env / "idx"
    result = runner.invoke(app, ["index", "build", "-i", str(src), "--index", str(index)])
    assert result.exit_code == 0, result.output
    assert f"{src}:3: not valid UTF-8 text" in result.output
    assert "indexed 2 articles" in result.output and "1 rejected" in result.output


def test_index_update_upserts_in_place(
    env: Path, small_index: Path, sample_articles: list[Article], engine_of: list[Engine]
) -> None:
    changed = sample_articles[0].model_copy(update={"title": "Поправено заглавие"})
    new = sample_articles[8]
    src = _jsonl(env / "up.jsonl", [changed, sample_articles[1], new], '{"id": "x", "title": "T"}')
    generation = IndexDir(small_index).current().name
    result = runner.invoke(app, ["index", "update", "-i", str(src), "--index", str(small_index)])
    assert result.exit_code == 0, result.output
    assert "1 created, 1 unchanged, 1 updated (1 rejected" in result.output
    assert f"{src}:4: needs a non-empty 'body' or 'lead'" in result.output
    engine = _open(small_index, engine_of)
    assert engine.generation_path.name == generation  # in place: no new generation
    assert len(engine) == 9 and engine.article(new.id) is not None
    assert engine.article(changed.id).title == "Поправено заглавие"  # type: ignore[union-attr]
    assert _listed(engine, new.id) and new.id not in _listed(engine, new.id)


def test_index_update_names_a_bad_input(env: Path, small_index: Path) -> None:
    base = ["index", "update", "--index", str(small_index), "-i"]
    out = _failed(runner.invoke(app, [*base, str(env / "missing.jsonl")]))
    assert f"input file not found: {env / 'missing.jsonl'}" in out
    (env / "notes.txt").write_text("id,title\n")
    out = _failed(runner.invoke(app, [*base, str(env / "notes.txt")]))
    assert f"{env / 'notes.txt'}: unknown input format '.txt'" in out


def test_index_delete_unpublishes_and_names_unknown_ids(
    small_index: Path, sample_articles: list[Article], engine_of: list[Engine]
) -> None:
    before = _open(small_index, engine_of)
    gone = _listed(before, sample_articles[0].id)[0]
    holders = [a.id for a in sample_articles[:8] if gone in _listed(before, a.id)]
    result = runner.invoke(app, ["index", "delete", gone, "nope", "--index", str(small_index)])
    out = _failed(result)
    assert "deleted 1 articles" in out and "not in the index: nope" in out
    engine = _open(small_index, engine_of)
    assert len(engine) == 7 and engine.article(gone) is None
    assert not [h for h in holders if gone in _listed(engine, h)]
    again = runner.invoke(app, ["index", "delete", gone, "--index", str(small_index)])
    assert f"not in the index: {gone}" in _failed(again)


def test_index_compact_rewrites_into_a_new_generation(
    small_index: Path, sample_articles: list[Article], engine_of: list[Engine]
) -> None:
    gone = sample_articles[2].id
    assert runner.invoke(app, ["index", "delete", gone, "--index", str(small_index)]).exit_code == 0
    before = IndexDir(small_index).current().name
    result = runner.invoke(app, ["index", "compact", "--index", str(small_index), "--no-progress"])
    assert result.exit_code == 0, result.output
    after = IndexDir(small_index).current().name
    assert after != before and f"into {after}" in result.output
    store = Store(IndexDir(small_index).current() / Store.FILENAME)
    try:
        ids = [a.id for a, _ in store.full_articles()]
    finally:
        store.close()
    assert sorted(ids) == sorted(a.id for a in sample_articles[:8] if a.id != gone)
    engine = _open(small_index, engine_of)
    assert len(engine) == 7 and all(gone not in _listed(engine, i) for i in ids)


def test_index_refresh_recomputes_a_stale_list(
    small_index: Path, sample_articles: list[Article], engine_of: list[Engine]
) -> None:
    target = sample_articles[3].id
    store = Store(IndexDir(small_index).current() / Store.FILENAME)
    try:
        good = store.get_list(target)
        with store.transaction() as tx:
            tx.put_list(target, b"[]", [], store.head())
    finally:
        store.close()
    result = runner.invoke(app, ["index", "refresh", "--index", str(small_index)])
    assert result.exit_code == 0, result.output
    assert "refreshed lists: 1 changed" in result.output
    assert _open(small_index, engine_of).stored_list(target) == good
    out = _failed(runner.invoke(app, ["index", "refresh", "--limit", "0"]), code=2)
    assert "Invalid value for '--limit': Input should be greater than or equal to 1" in out


def test_related_json_is_the_apis_answer(
    env: Path, sample_index: Path, sample_articles: list[Article], settings_factory
) -> None:  # type: ignore[no-untyped-def]
    a = sample_articles[0]
    other = next(x.section for x in sample_articles if x.section != a.section)
    args = ["related", a.id, "-k", "4", "--stage", "ranked", "--section", str(other), "--json"]
    first = json.loads(runner.invoke(app, [*args, "--index", str(sample_index)]).output)
    shown = first["items"][0]["id"]
    result = runner.invoke(app, [*args, "--exclude", shown, "--index", str(sample_index)])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["article_id"] == a.id and answer["count"] == 4 == len(answer["items"])
    assert {i["section"] for i in answer["items"]} == {other}
    assert shown not in {i["id"] for i in answer["items"]}
    query = {"k": 4, "stage": "ranked", "section": other, "exclude": shown}
    with TestClient(create_app(settings_factory(index_dir=sample_index))) as client:
        api = client.get(f"/articles/{a.id}/related", params=query)
    assert api.status_code == 200 and api.json() == answer

    text = runner.invoke(app, ["related", a.id, "--index", str(sample_index)])
    assert text.exit_code == 0 and a.title in text.output


def test_errors_are_clear(env: Path, sample_index: Path) -> None:
    index = ["--index", str(sample_index)]
    out = _failed(runner.invoke(app, ["related", "nope", *index]))
    assert "article 'nope' is not in" in out
    out = _failed(runner.invoke(app, ["related", "x", "-k", "0", *index]), code=2)
    assert "Invalid value for '-k' / '--k': Input should be greater than or equal to 1" in out
    out = _failed(runner.invoke(app, ["related", "x", "--stage", "best", *index]), code=2)
    assert "Invalid value for '--stage'" in out and "'best' is not one of" in out
    out = _failed(runner.invoke(app, ["related", "x", "--since", "2026-13-01", *index]), code=2)
    assert "Invalid value for '--since': Input should be a valid datetime" in out
    out = _failed(runner.invoke(app, ["related", "x", "--exclude", "y" * 300, *index]), code=2)
    assert "Invalid value for '--exclude': String should have at most 200" in out
    out = _failed(runner.invoke(app, ["models", "build", "--dtype", "bf16"]), code=2)
    assert "Invalid value for '--dtype'" in out and "'bf16' is not one of" in out
    out = _failed(runner.invoke(app, ["related", "nope", "--index", str(env / "none")]))
    assert "no index at" in out
    missing = env / "missing.jsonl"
    out = _failed(runner.invoke(app, ["index", "build", "-i", str(missing), "--index", "x"]))
    assert f"input file not found: {missing}" in out


def test_a_bad_setting_is_named(env: Path, sample_index: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RECOMMENDER_MAX_K", "0")
    out = _failed(runner.invoke(app, ["index", "stats", "--index", str(sample_index)]))
    assert "RECOMMENDER_MAX_K: Input should be greater than or equal to 1" in out


def test_the_eval_choices_are_the_harness_choices() -> None:
    assert get_args(options.Method) == get_args(runs.Method)
    assert get_args(options.Stage) == get_args(runs.Stage)
    assert get_args(options.Test) == significance.TESTS


def test_the_module_runs_as_the_console_script() -> None:
    """`python -m recommender.cli` (how tests/server.py and the benchmarks start it)."""
    done = subprocess.run(
        [sys.executable, "-m", "recommender.cli", "sample"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("articles.jsonl")
    assert Path(done.stdout.strip()).is_file()
