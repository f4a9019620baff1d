"""What the commands share: the two consoles, failing with a message, settings and engine.

A command fails with `raise fail("...")`: the message on stderr naming the input at fault
(file, line, field), exit code 1, no traceback. A bad option is typer's (click's) usage error:
exit code 2, naming the option.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

from recommender.config import Settings

if TYPE_CHECKING:
    from recommender.engine import Engine
    from recommender.inputs import Reject

T = TypeVar("T")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    """Print `message` as an error; the caller raises what this returns."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=1)


def settings_for(index: Path | None = None, **options: Any) -> Settings:
    """The configured settings (`RECOMMENDER_*` variables) with the given options and
    `--index`. A bad variable fails the command naming it; a bad option is a usage error."""
    from pydantic import ValidationError

    try:
        settings = Settings(**options)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0])
        if field in options:
            flag = f"--{field.replace('_', '-')}"
            raise typer.BadParameter(first["msg"], param_hint=f"'{flag}'") from None
        variable = "__".join(str(part) for part in first["loc"]).upper()
        raise fail(f"RECOMMENDER_{variable}: {first['msg']}") from None
    if index is not None:
        settings.index_dir = index
    return settings


def open_engine(settings: Settings, with_encoder: bool) -> Engine:
    """The engine over `settings.index_dir`; a missing or mismatched index fails the command."""
    from recommender.embedding.backends import model_id_for
    from recommender.embedding.encoder import ArticleEncoder
    from recommender.engine import Engine, IndexUnavailable

    try:
        encoder = ArticleEncoder.from_settings(settings) if with_encoder else None
        return Engine(
            settings.index_dir,
            settings,
            encoder,
            model_id=model_id_for(settings) if with_encoder else None,
        )
    except (IndexUnavailable, FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None


def files_exist(paths: Iterable[Path]) -> None:
    for path in paths:
        if not path.is_file():
            raise fail(f"file not found: {path}")


def read(reader: Callable[[Path], T], path: Path) -> T:
    """`reader(path)`; a malformed file fails the command with the reader's message."""
    try:
        return reader(path)
    except (ValueError, KeyError) as exc:
        raise fail(str(exc)) from None


def print_rejects(rejects: Iterable[Reject]) -> None:
    for r in rejects:
        err.print(f"[yellow]rejected[/yellow] {r.source}:{r.line}: {r.reason}", highlight=False)
