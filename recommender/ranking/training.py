"""Training the ranking model (`recommender.ranking.learned`) from judgements, cross-validated.

Data: every query with a judgement, its candidates as the engine makes them (the hand fusion's
pool), their `FEATURES`; the ranker's label is the grade (heuristic qrels, overridden by later
files such as the story ruler), unjudged candidates 0. The two classifiers learn from the
happening-labelled judgements only: `own` from the judged candidates of ruled queries (grade 3 =
the query's own happening), `pair` from the pairs of judged grade-2/3 candidates of one ruled
query (one label = one happening; grade 3's are all the query's own).

Queries are split into 5 folds (seeded); each fold's boosters learn on the other four, and the
fold's queries get their ranked list and box from the real ranking with that fold's model
(out-of-fold runs: the figures to claim). The thresholds are those with the best F1 on the
out-of-fold probabilities. The shipped model learns on every query.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from recommender.eval import metrics
from recommender.eval.files import Qrels, Run, RunItem, happenings_of
from recommender.ranking.config import RankingConfig
from recommender.ranking.learned import FEATURES, PAIR_FEATURES, features, pair_features
from recommender.ranking.related import K_LIMIT, Related, RelatedQuery
from recommender.ranking.signals import Ranker, Scored

FOLDS = 5
SEED = 0
RANKER_PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [5, 10],
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.9,
    "lambdarank_truncation_level": 20,
}
CLASSIFIER_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 7,
    "min_data_in_leaf": 10,
}
COMMON: dict[str, Any] = {"verbosity": -1, "deterministic": True, "num_threads": 1, "seed": SEED}
ROUNDS = {"ranker": 200, "own": 150, "pair": 150}
RULED_WEIGHT = 5.0
"""How much more a ruled query (judged for the box, by the rubric) weighs in the ranker's loss
than a query with heuristic grades only."""


@dataclass
class QueryData:
    """One query's candidates (hand-fusion order), feature rows and labels."""

    query_id: str
    items: list[Scored]
    rows: np.ndarray
    grades: np.ndarray
    own: np.ndarray  # 1 own happening, 0 judged otherwise, -1 not on the ruler
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] = field(
        default_factory=lambda: (np.zeros(0, int), np.zeros(0, int), np.zeros((0, 0)))
    )
    pair_labels: np.ndarray = field(default_factory=lambda: np.zeros(0))


def collect(related: Related, qrels: Qrels, queries: Sequence[str]) -> list[QueryData]:
    """The training rows of every query in `queries` that the index holds and qrels judge."""
    labels, ruled = happenings_of(qrels)
    config = related.config.model_copy(update={"model": None})
    m = related.mirror
    out: list[QueryData] = []
    for query_id in queries:
        if query_id not in m.slot_of or not qrels.get(query_id):
            continue
        query = related.query_of(query_id)
        q = RelatedQuery(k=K_LIMIT, stage="ranked")
        with m.lock:
            candidates = related._candidates(query, q, config)
            items = Ranker(config).rank_pool(query.article, candidates)
        hand = np.array([it.score for it in items])
        rows = features(query.article, [it.candidate for it in items], hand)
        judged = qrels[query_id]
        grades = np.array([judged.get(it.article.id, 0) for it in items], dtype=np.float64)
        data = QueryData(query_id, items, rows, grades, np.full(len(items), -1.0))
        if query_id in ruled:
            data.own = np.array(
                [
                    -1.0 if it.article.id not in judged else float(judged[it.article.id] == 3)
                    for it in items
                ]
            )
            _ruled_pairs(related, data, judged, labels.get(query_id, {}))
        out.append(data)
    return out


def _ruled_pairs(
    related: Related, data: QueryData, judged: Mapping[str, int], labels: Mapping[str, str]
) -> None:
    m = related.mirror
    chosen = [
        i
        for i, it in enumerate(data.items)
        if judged.get(it.article.id, 0) >= 2 and it.article.id in labels
    ]
    with m.lock:
        items = [
            replace(
                data.items[i],
                candidate=replace(
                    data.items[i].candidate,
                    terms=m.lexical.row_terms(m.slot_of[data.items[i].article.id]),
                ),
            )
            for i in chosen
        ]
    i, j, rows = pair_features(items)
    names = [labels[it.article.id] for it in items]
    data.pairs = (i, j, rows)
    data.pair_labels = np.array([float(names[a] == names[b]) for a, b in zip(i, j, strict=True)])


def _copy_rule(config: RankingConfig, data: Sequence[QueryData]) -> dict[str, float]:
    """Precision and recall of the final stage's copy rule (dense or TF-IDF cosine of the pair
    at the thresholds) as a "same happening" test, on the judged pairs the model learns from."""
    rows = np.concatenate([d.pairs[2] for d in data if len(d.pair_labels)])
    labels = np.concatenate([d.pair_labels for d in data if len(d.pair_labels)]) > 0
    said = (rows[:, 0] >= config.duplicate_cosine) | (rows[:, 1] >= config.same_story_lexical)
    hits = float((said & labels).sum())
    return {
        "precision": hits / float(said.sum()) if said.sum() else 0.0,
        "recall": hits / float(labels.sum()) if labels.sum() else 0.0,
    }


def folds(query_ids: Sequence[str], n: int = FOLDS, seed: int = SEED) -> dict[str, int]:
    """Each query's fold, a seeded shuffle dealt round-robin."""
    order = sorted(query_ids)
    random.Random(seed).shuffle(order)
    return {q: i % n for i, q in enumerate(order)}


def _train(data: Sequence[QueryData]) -> dict[str, Any]:
    import lightgbm

    boosters: dict[str, Any] = {}
    ranker = lightgbm.Dataset(
        np.concatenate([d.rows for d in data]),
        np.concatenate([d.grades for d in data]),
        group=[len(d.rows) for d in data],
        weight=np.concatenate(
            [np.full(len(d.rows), RULED_WEIGHT if (d.own >= 0).any() else 1.0) for d in data]
        ),
        feature_name=list(FEATURES),
        free_raw_data=False,
    )
    boosters["ranker"] = lightgbm.train(
        RANKER_PARAMS | COMMON, ranker, num_boost_round=ROUNDS["ranker"]
    )
    own_rows = np.concatenate([d.rows[d.own >= 0] for d in data])
    own_labels = np.concatenate([d.own[d.own >= 0] for d in data])
    boosters["own"] = lightgbm.train(
        CLASSIFIER_PARAMS | COMMON,
        lightgbm.Dataset(own_rows, own_labels, feature_name=list(FEATURES)),
        num_boost_round=ROUNDS["own"],
    )
    pair_rows = np.concatenate([d.pairs[2] for d in data if len(d.pair_labels)])
    pair_labels = np.concatenate([d.pair_labels for d in data if len(d.pair_labels)])
    boosters["pair"] = lightgbm.train(
        CLASSIFIER_PARAMS | COMMON,
        lightgbm.Dataset(pair_rows, pair_labels, feature_name=list(PAIR_FEATURES)),
        num_boost_round=ROUNDS["pair"],
    )
    return boosters


def best_f1(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """(threshold, precision, recall) of the best F1 over the distinct probabilities."""
    best = (0.5, 0.0, 0.0, -1.0)
    positives = float(labels.sum())
    for t in np.unique(np.round(probabilities, 3)):
        said = probabilities >= t
        hits = float((said & (labels > 0)).sum())
        p = hits / said.sum() if said.sum() else 0.0
        r = hits / positives if positives else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if f1 > best[3]:
            best = (float(t), p, r, f1)
    return best[0], best[1], best[2]


def _save(boosters: Mapping[str, Any], path: Path, card: Mapping[str, Any]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for name, booster in boosters.items():
        tmp = path / f"{name}.txt.tmp"
        booster.save_model(str(tmp))
        tmp.replace(path / f"{name}.txt")
    _write(path / "card.json", json.dumps(card, indent=2) + "\n")


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _runs(related: Related, config: RankingConfig, ids: Sequence[str]) -> tuple[Run, Run]:
    fold = Related(related.mirror, config)
    ranked: Run = {}
    box: Run = {}
    for query_id in ids:
        for stage, run in (("ranked", ranked), ("final", box)):
            q = RelatedQuery(k=K_LIMIT if stage == "ranked" else 20, stage=stage)  # type: ignore[arg-type]
            run[query_id] = [
                RunItem(it.article.id, it.score, it.reason, dict(it.parts))
                for it in fold.for_id(query_id, q)
            ]
    return ranked, box


def _figures(
    ranked: Run, box: Run, heuristic: Qrels, ruler: Qrels, ids: Sequence[str]
) -> dict[str, float]:
    """A fold's figures: the ranked list's nDCG@10 and recall@10 on the heuristic qrels, its
    judged P@5 and the box's ruler on the ruler's judgements."""
    ranked_ids = {q: [it.doc_id for it in items] for q, items in ranked.items()}
    box_ids = {q: [it.doc_id for it in items] for q, items in box.items()}
    h = metrics.evaluate(ranked_ids, heuristic, ids)
    r = metrics.evaluate(ranked_ids, ruler, ids)
    b = metrics.evaluate(box_ids, ruler, ids)
    figures = {"ranked_ndcg@10": float(h["ndcg@10"]), "ranked_recall@10": float(h["recall@10"])}
    figures["ranked_judged_p@5"] = float(r["judged_p@5"])
    figures |= {f"box_{k}": float(b[k]) for k in metrics.RULER}
    return figures


def train(
    related: Related,
    qrels: Qrels,
    heuristic: Qrels,
    queries: Sequence[str],
    out: Path,
    data_note: str,
) -> tuple[dict[str, Any], Run, Run]:
    """Cross-validate, then train on every query and write the model and its card to `out`.
    `qrels`: the training judgements (heuristic overridden by the ruler); `heuristic`: the
    heuristic qrels alone, for the ranked list's nDCG/recall figures. Returns the card and the
    out-of-fold ranked and box runs."""
    data = collect(related, qrels, queries)
    fold_of = folds([d.query_id for d in data])
    fold_dir = out / "folds"
    oof_own: list[tuple[np.ndarray, np.ndarray]] = []
    oof_pair: list[tuple[np.ndarray, np.ndarray]] = []
    per_fold: list[dict[str, Any]] = []
    trained = []
    for k in range(FOLDS):
        train_set = [d for d in data if fold_of[d.query_id] != k]
        held = [d for d in data if fold_of[d.query_id] == k]
        boosters = _train(train_set)
        trained.append(boosters)
        for d in held:
            mask = d.own >= 0
            if mask.any():
                oof_own.append((boosters["own"].predict(d.rows[mask]), d.own[mask]))
            if len(d.pair_labels):
                oof_pair.append((boosters["pair"].predict(d.pairs[2]), d.pair_labels))
    own_p = np.concatenate([p for p, _ in oof_own])
    own_y = np.concatenate([y for _, y in oof_own])
    pair_p = np.concatenate([p for p, _ in oof_pair])
    pair_y = np.concatenate([y for _, y in oof_pair])
    copy_rule = _copy_rule(related.config, data)
    own_t, own_prec, own_rec = best_f1(own_p, own_y)
    pair_t, pair_prec, pair_rec = best_f1(pair_p, pair_y)
    thresholds = {"own_threshold": own_t, "pair_threshold": pair_t}
    base_card = {"features": list(FEATURES), "pair_features": list(PAIR_FEATURES)} | thresholds
    oof_ranked: Run = {}
    oof_box: Run = {}
    for k, boosters in enumerate(trained):
        path = fold_dir / f"fold-{k}"
        _save(boosters, path, base_card)
        ids = [d.query_id for d in data if fold_of[d.query_id] == k]
        config = related.config.model_copy(update={"model": str(path), "group_happenings": True})
        ranked, box = _runs(related, config, ids)
        oof_ranked |= ranked
        oof_box |= box
        per_fold.append(
            {"fold": k, "queries": len(ids)} | _figures(ranked, box, heuristic, qrels, ids)
        )
    final = _train(data)
    card: dict[str, Any] = base_card | {
        "data": data_note,
        "queries": len(data),
        "ruled_queries": int(sum((d.own >= 0).any() for d in data)),
        "rows": int(sum(len(d.rows) for d in data)),
        "own_rows": len(own_y),
        "pair_rows": len(pair_y),
        "folds": FOLDS,
        "seed": SEED,
        "params": {"ranker": RANKER_PARAMS, "classifiers": CLASSIFIER_PARAMS, "rounds": ROUNDS},
        "out_of_fold": {
            "own": {"threshold": own_t, "precision": own_prec, "recall": own_rec},
            "pair": {"threshold": pair_t, "precision": pair_prec, "recall": pair_rec},
        },
        "copy_rule": copy_rule,
        "per_fold": per_fold,
        "lightgbm": __import__("lightgbm").__version__,
    }
    _save(final, out, card)
    _write(out / "card.md", card_markdown(card))
    return card, oof_ranked, oof_box


def card_markdown(card: Mapping[str, Any]) -> str:
    """The card as Markdown: data, features, thresholds, the fold-wise figures."""
    oof = card["out_of_fold"]
    lines = [
        "# Ranking model card",
        "",
        f"Data: {card['data']}; {card['queries']} queries ({card['ruled_queries']} on the story "
        f"ruler), {card['rows']} candidate rows, {card['own_rows']} judged own-happening rows, "
        f"{card['pair_rows']} judged pairs. LightGBM {card['lightgbm']}, {card['folds']} folds "
        f"by query (seed {card['seed']}). No text: trees over numeric features.",
        "",
        "Features (query–candidate): " + ", ".join(card["features"]),
        "",
        "Pair features (candidate–candidate): " + ", ".join(card["pair_features"]),
        "",
        f"Own happening: threshold {oof['own']['threshold']:.3f}, out-of-fold precision "
        f"{oof['own']['precision']:.3f}, recall {oof['own']['recall']:.3f}.",
        f"Same happening (pairs of judged grade-2/3 items of one query): threshold "
        f"{oof['pair']['threshold']:.3f}, out-of-fold precision {oof['pair']['precision']:.3f}, "
        f"recall {oof['pair']['recall']:.3f} (the copy rule alone: precision "
        f"{card['copy_rule']['precision']:.3f}, recall {card['copy_rule']['recall']:.3f}).",
        "",
    ]
    rows = card["per_fold"]
    names = [n for n in rows[0] if n not in ("fold",)]
    lines.append("| fold | " + " | ".join(names) + " |")
    lines.append("| --- |" + " ---: |" * len(names))
    for r in rows:
        cells = [f"{r[n]:.4f}" if isinstance(r[n], float) else str(r[n]) for n in names]
        lines.append(f"| {r['fold']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
