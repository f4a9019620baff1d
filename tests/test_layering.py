"""Imports run one way, down the pipeline: a stage may use the stages before it, never one after.

The stages, in order (from what the modules import):
    0 record      `articles` (the validated article), `inputs` (JSONL and CSV readers)
    1 text        `text/`: cleaning, the lexical analyzer, named entities
    2 embedding   `embedding/`: the model build, backends, the encoder and its cache
    3 storage     `storage/`: the store and its log, generations, the in-memory mirror
    4 ranking     `ranking/`: signals, fusion, the learned ranker, the final stage, related
    5 engine      `engine`, `indexing`: writes, stored lists, following, batch builds
    6 serving     `serving/`, `web/`: HTTP machinery and the HTML box
    7 interfaces  `api`, `cli` (nothing comes after them, so they are not checked)
Any stage may load the shared modules: `recommender.config` (the settings) with the plain-data
`recommender.ranking.config` its settings hold, and `recommender.fsutil` (crash-safe writes).
`eval/` measures the pipeline and is no stage of it (its libraries serve `ranking.training`,
`eval.runs` drives an engine); what its modules pull in is checked through the stages.

Each stage is imported alone, every module of it, in a fresh interpreter; the `recommender`
modules that this loaded must all belong to that stage, an earlier one, or the shared ones.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "recommender"
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("record", ("recommender.articles", "recommender.inputs")),
    ("text", ("recommender.text",)),
    ("embedding", ("recommender.embedding",)),
    ("storage", ("recommender.storage",)),
    ("ranking", ("recommender.ranking",)),
    ("engine", ("recommender.engine", "recommender.indexing")),
    ("serving", ("recommender.serving", "recommender.web")),
    ("interfaces", ("recommender.api", "recommender.cli")),
]
SHARED = {
    "recommender",
    "recommender.config",
    "recommender.fsutil",
    "recommender.ranking",
    "recommender.ranking.config",
}


def _stage_of(module: str) -> int | None:
    if module in SHARED:
        return None
    for number, (_, prefixes) in enumerate(STAGES):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return number
    return None


def _modules(prefix: str) -> list[str]:
    """A module, or every module of a package."""
    path = PACKAGE.parent / prefix.replace(".", "/")
    if not path.is_dir():
        return [prefix]
    return sorted(
        ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        for p in path.rglob("*.py")
    )


def _loaded_by(modules: list[str]) -> list[str]:
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.split('.')[0] == 'recommender')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    return out.stdout.split()


@pytest.mark.parametrize("number", range(len(STAGES) - 1), ids=[s for s, _ in STAGES[:-1]])
def test_a_stage_loads_no_later_stage(number: int) -> None:
    name, prefixes = STAGES[number]
    modules = [m for p in prefixes for m in _modules(p)]
    loaded = _loaded_by(modules)
    assert set(modules) <= set(loaded)
    later = {
        m: STAGES[stage][0]
        for m in loaded
        if (stage := _stage_of(m)) is not None and stage > number
    }
    assert not later, f"importing the {name} stage loads later stages: {later}"
