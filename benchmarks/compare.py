"""Compare two results files: every numeric result they share, with the NEW/OLD ratio."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SKIP = ("n", "size", "queries", "requests", "articles", "rows")


def _leaf_key(value: dict[str, Any]) -> str | None:
    """A name for a list item, so that lists of measurements line up between runs."""
    parts = [
        f"{k}={value[k]}"
        for k in ("size", "kind", "m", "ef_search", "concurrency", "rate", "backend")
        if k in value
    ]
    return ",".join(parts) or None


def flatten(value: Any, path: str = "") -> Iterator[tuple[str, float]]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield path, float(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from flatten(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            key = _leaf_key(item) if isinstance(item, dict) else None
            yield from flatten(item, f"{path}[{key or i}]")


def metrics(doc: dict[str, Any]) -> dict[str, float]:
    return {
        path: value
        for path, value in flatten(doc["results"])
        if path.rsplit(".", 1)[-1] not in SKIP
    }


def compare(old: dict[str, Any], new: dict[str, Any]) -> str:
    a, b = metrics(old), metrics(new)
    shared = [p for p in a if p in b]
    width = max((len(p) for p in shared), default=10)
    lines = [
        f"old: {old['git']['short']} {old['started'][:19]}   new: {new['git']['short']} "
        f"{new['started'][:19]}",
        f"{'metric':<{width}}  {'old':>12}  {'new':>12}  {'new/old':>8}",
    ]
    for p in shared:
        ratio = f"{b[p] / a[p]:8.3f}" if a[p] else "       -"
        lines.append(f"{p:<{width}}  {a[p]:12.4g}  {b[p]:12.4g}  {ratio}")
    only = sorted(set(a) ^ set(b))
    if only:
        lines.append(f"({len(only)} metrics appear in only one of the files)")
    return "\n".join(lines)


def compare_files(old: Path, new: Path) -> str:
    return compare(json.loads(old.read_text()), json.loads(new.read_text()))
