"""The command line, run as users run it (typer's runner over the real index and model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recommender.articles import Article
from recommender.cli import app
from recommender.config import Settings
from recommender.engine import Engine

runner = CliRunner()


@pytest.fixture()
def env(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECOMMENDER_MODELS_DIR", str(model_dir.parent))
    monkeypatch.setenv("RECOMMENDER_CACHE_PATH", str(tmp_path / "cache.sqlite"))
    return tmp_path


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


def test_related_text_and_json(
    env: Path, sample_index: Path, sample_articles: list[Article]
) -> None:
    a = sample_articles[0]
    result = runner.invoke(
        app, ["related", a.id, "-k", "4", "--index", str(sample_index), "--json"]
    )
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)
    assert len(items) == 4 and a.id not in {i["id"] for i in items}
    text = runner.invoke(app, ["related", a.id, "--index", str(sample_index)])
    assert text.exit_code == 0 and a.title in text.output
    other = next(x.section for x in sample_articles if x.section != a.section)
    args = ["related", a.id, "--index", str(sample_index), "--json", "--section", str(other)]
    filtered = json.loads(runner.invoke(app, [*args, "--stage", "ranked"]).output)
    assert len(filtered) == 5 and {i["section"] for i in filtered} == {other}


def test_errors_are_clear(env: Path, sample_index: Path) -> None:
    r = runner.invoke(app, ["related", "nope", "--index", str(sample_index)])
    assert r.exit_code == 1 and "article 'nope' is not in" in r.output
    r = runner.invoke(app, ["related", "x", "-k", "0", "--index", str(sample_index)])
    assert r.exit_code == 1 and "--k: Input should be greater than or equal to 1" in r.output
    r = runner.invoke(app, ["related", "x", "--stage", "best", "--index", str(sample_index)])
    assert r.exit_code == 1 and "--stage" in r.output
    r = runner.invoke(app, ["related", "nope", "--index", str(env / "none")])
    assert r.exit_code == 1 and "no index at" in r.output
    r = runner.invoke(
        app, ["index", "build", "--input", str(env / "missing.jsonl"), "--index", str(env / "x")]
    )
    assert r.exit_code == 1 and "input file not found" in r.output


def test_the_listener_of_several_workers_is_tcp_so_answers_are_not_delayed() -> None:
    """asyncio enables TCP_NODELAY only on accepted sockets whose protocol is IPPROTO_TCP;
    they inherit it from the listener (uvicorn's own has 0: ~40 ms per keep-alive answer)."""
    import socket

    from recommender.serving.workers import reuseport_socket

    listener = reuseport_socket("127.0.0.1", 0)
    try:
        listener.listen(1)
        client = socket.create_connection(listener.getsockname()[:2])
        accepted, _ = listener.accept()
        assert listener.proto == socket.IPPROTO_TCP and accepted.proto == socket.IPPROTO_TCP
        accepted.close()
        client.close()
    finally:
        listener.close()
