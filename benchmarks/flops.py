"""The physical limit of encoding: model FLOPs per article against measured matmul speed."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class Architecture:
    layers: int = 12
    hidden: int = 384
    ffn: int = 1536

    @classmethod
    def of(cls, model_dir: Path) -> Architecture:
        """From the model's config.json; the multilingual-e5-small shape if it is missing."""
        path = model_dir / "config.json"
        if not path.is_file():
            return cls()
        config = json.loads(path.read_text())
        return cls(config["num_hidden_layers"], config["hidden_size"], config["intermediate_size"])

    def flops(self, tokens: int) -> float:
        """Multiply-add FLOPs (2 per MAC) of one forward pass over `tokens` tokens.

        Per layer: Q, K, V and output projections 4 * 2nh^2, attention scores and the
        weighted sum 2 * 2n^2h, the feed-forward pair 2 * 2nhf. Embedding lookups, layer norms,
        softmax and GELU are a few percent and left out.
        """
        n, h, f = tokens, self.hidden, self.ffn
        return float(self.layers * (8 * n * h * h + 4 * n * n * h + 4 * n * h * f))


def matmul_gflops(size: int = 1024, min_seconds: float = 1.0) -> float:
    """Measured float32 torch.matmul rate (GFLOP/s) with torch's default threads."""
    a = torch.randn(size, size, dtype=torch.float32)
    b = torch.randn(size, size, dtype=torch.float32)
    torch.matmul(a, b)
    reps, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < min_seconds:
        torch.matmul(a, b)
        reps += 1
    return 2 * size**3 * reps / elapsed / 1e9
