"""Command line: `python -m benchmarks run [...]` and `python -m benchmarks compare OLD NEW`."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.compare import compare_files
from benchmarks.context import RunContext
from benchmarks.profile import FULL, QUICK
from benchmarks.runner import BENCHMARKS, run_suite
from recommender.config import Settings

DEFAULT_DATA = Path("/work/shared/data/bg-news/articles.jsonl")
RESULTS = Path(__file__).resolve().parent / "results"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the suite (or some benchmarks) and write results")
    run.add_argument("--quick", action="store_true", help="small sizes and short loops")
    run.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these")
    run.add_argument("--sizes", nargs="+", type=int, help="index sizes (e.g. 1000 10000 1000000)")
    run.add_argument("--data", type=Path, default=DEFAULT_DATA, help="articles JSONL")
    run.add_argument("--results", type=Path, default=RESULTS, help="where results go")
    run.add_argument("--seed", type=int, default=0)
    cmp = sub.add_parser("compare", help="ratios of NEW to OLD for every shared metric")
    cmp.add_argument("old", type=Path)
    cmp.add_argument("new", type=Path)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.command == "compare":
        print(compare_files(args.old, args.new))
        return 0
    profile = QUICK if args.quick else FULL
    sizes = tuple(sorted(args.sizes)) if args.sizes else profile.sizes
    names = args.only or list(BENCHMARKS)
    with tempfile.TemporaryDirectory(prefix="benchmarks-") as scratch:
        ctx = RunContext(args.data, Settings(), profile, sizes, Path(scratch), args.seed)
        path = run_suite(ctx, names, args.results, argv)
        errors = set(names) - set(ctx.results)
    print(f"results: {path} and {path.with_suffix('.md')}")
    return 1 if errors else 0
