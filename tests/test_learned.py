"""The learned ranking and the grouping by happening, with small boosters trained on rules."""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightgbm
import numpy as np
import pytest

from recommender.ranking.config import RankingConfig
from recommender.ranking.final import final_list
from recommender.ranking.learned import FEATURES, PAIR_FEATURES, load_model
from recommender.ranking.signals import Candidate, Ranker
from recommender.ranking.training import best_f1, folds
from tests.test_ranking import QUERY, art

PARAMS = {"verbosity": -1, "deterministic": True, "num_threads": 1, "seed": 0}


def _booster(rows: np.ndarray, labels: np.ndarray, ranker: bool) -> lightgbm.Booster:
    params = PARAMS | ({"objective": "lambdarank"} if ranker else {"objective": "binary"})
    group = [20] * (len(rows) // 20) if ranker else None
    return lightgbm.train(params, lightgbm.Dataset(rows, labels, group=group), 60)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Boosters that learned rules: rank by dense cosine; own happening = dense >= 0.9; one
    happening = the pair's dense cosine >= 0.9."""
    rng = np.random.default_rng(0)
    rows = rng.uniform(0.0, 1.0, (2000, len(FEATURES)))
    pairs = rng.uniform(0.0, 1.0, (2000, len(PAIR_FEATURES)))
    path = tmp_path_factory.mktemp("model")
    _booster(rows, np.floor(rows[:, 0] * 20), True).save_model(str(path / "ranker.txt"))
    _booster(rows, (rows[:, 0] >= 0.9).astype(float), False).save_model(str(path / "own.txt"))
    _booster(pairs, (pairs[:, 0] >= 0.9).astype(float), False).save_model(str(path / "pair.txt"))
    card = {
        "features": list(FEATURES),
        "pair_features": list(PAIR_FEATURES),
        "own_threshold": 0.5,
        "pair_threshold": 0.5,
    }
    (path / "card.json").write_text(json.dumps(card))
    return path


def _vector(dense: float, direction: tuple[float, float, float]) -> np.ndarray:
    u = np.array(direction, dtype=np.float64)
    u /= np.linalg.norm(u)
    return np.concatenate([[dense], math.sqrt(1 - dense**2) * u]).astype(np.float32)


def _candidates() -> list[Candidate]:
    """own: the query's happening (dense 0.93); h1a/h1b: two reports of one happening (their
    cosine 0.94, under the copy rule's 0.965); h2 another happening."""
    specs = {
        "own": (0.93, (0, 0, 1)),
        "h1a": (0.85, (1, 0, 0)),
        "h1b": (0.75, (1, 0.6, 0)),
        "h2": (0.65, (0, 1, 0)),
    }
    return [
        Candidate(art(name), dense=d, lexical=0.1, vector=_vector(d, u))
        for name, (d, u) in specs.items()
    ]


def test_the_box_keeps_one_item_per_happening_and_never_the_articles_own(
    model_dir: Path,
) -> None:
    hand = RankingConfig(freshness_weight=0.0, k=2)
    learned = hand.model_copy(update={"model": str(model_dir)})
    plain = final_list(QUERY, Ranker(hand).rank(QUERY, _candidates()), hand)
    assert [it.article.id for it in plain] == ["own", "h1a"]
    items = Ranker(learned).rank(QUERY, _candidates())
    assert [it.article.id for it in items] == ["own", "h1a", "h1b", "h2"]
    assert items[0].parts["own"] > 0.5 > items[1].parts["own"]
    assert [it.article.id for it in final_list(QUERY, items, learned)] == ["h1a", "h2"]
    # the list is never short while candidates remain: set-aside items come last
    longer = learned.model_copy(update={"k": 4})
    assert [it.article.id for it in final_list(QUERY, items, longer)] == [
        "h1a",
        "h2",
        "own",
        "h1b",
    ]
    ungrouped = learned.model_copy(update={"group_happenings": False})
    assert [it.article.id for it in final_list(QUERY, items, ungrouped)] == ["own", "h1a"]


def test_the_model_replaces_the_hand_order(model_dir: Path) -> None:
    """Hand fusion puts the lexical match first; the model (dense cosine) does not."""
    candidates = [
        Candidate(art("lexical"), dense=0.70, lexical=0.45),
        Candidate(art("dense"), dense=0.85, lexical=0.05),
        Candidate(art("weak"), dense=0.60, lexical=0.05),
    ]
    hand = RankingConfig(freshness_weight=0.0)
    assert Ranker(hand).rank(QUERY, candidates)[0].article.id == "lexical"
    learned = hand.model_copy(update={"model": str(model_dir)})
    assert Ranker(learned).rank(QUERY, candidates)[0].article.id == "dense"


def test_a_model_of_other_features_is_refused(tmp_path: Path, model_dir: Path) -> None:
    card = json.loads((model_dir / "card.json").read_text())
    (tmp_path / "card.json").write_text(json.dumps(card | {"features": ["dense"]}))
    with pytest.raises(ValueError, match="features are not this version's"):
        load_model(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no card\.json"):
        load_model(tmp_path / "missing")


def test_best_f1_threshold_and_folds() -> None:
    p = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.1])
    y = np.array([1, 1, 0, 1, 0, 0])
    threshold, precision, recall = best_f1(p, y)
    # at 0.8: P 1, R 2/3 (F1 0.8); at 0.4: P 3/4, R 1 (F1 6/7): the best
    assert threshold == pytest.approx(0.4)
    assert (precision, recall) == (pytest.approx(0.75), pytest.approx(1.0))
    fold_of = folds([f"q{i}" for i in range(10)])
    assert sorted(np.bincount(list(fold_of.values()))) == [2, 2, 2, 2, 2]
    assert fold_of == folds([f"q{i}" for i in reversed(range(10))])
