"""Plain-data settings of the ranking and the final stage (defaults: measured best)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Fusion = Literal["zscore", "rrf", "linear"]


class RankingConfig(BaseModel):
    """Plain-data settings of the ranking and the final stage (defaults: measured best)."""

    fusion: Fusion = "zscore"
    w_dense: float = 0.5
    w_lexical: float = 1.0
    w_entities: float = 1.0
    rrf_k: int = 60
    freshness_weight: float = 12.0
    freshness_window_days: float = 3.0
    freshness_scale_days: float = 30.0
    missing_date_penalty: float = 0.5
    pool_size: int = Field(default=200, ge=1)
    same_story_dense: float = 0.97
    same_story_lexical: float = 0.5
    duplicate_cosine: float = 0.965
    preferred_sources: list[str] = Field(default_factory=list)
    min_score: float = 0.0
    mmr_lambda: float = 1.0
    recent_days: float = 7.0
    final_pool: int = Field(
        default=60, ge=1, description="best-ranked items the final stage chooses from"
    )
    k: int = Field(default=10, ge=1)
    model: str | None = Field(
        default=None,
        description="a ranking model directory (`recommender ranker train`): its LambdaRank "
        "order replaces the hand fusion's; none: the hand fusion",
    )
    group_happenings: bool = Field(
        default=True,
        description="with a model: the box drops reports of the article's own happening and "
        "keeps one item per happening (the model's classifiers)",
    )
