"""Option types the commands share, so that one option is spelled and explained once; and
`model_options`, which declares a pydantic model's fields as a command's options.

Spellings: `--input/-i` (articles), `--out/-o` (what a command writes), `-k/--k` (how many),
`--index` (an index directory), `--json` (print JSON).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import typer
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

InputOpt = Annotated[Path, typer.Option("--input", "-i", help="Articles, .jsonl or .csv")]
IndexOpt = Annotated[
    Path | None, typer.Option("--index", help="Index directory", show_default="index/default")
]
RejectsOpt = Annotated[
    Path | None,
    typer.Option(help="Where rejected rows go", show_default="<index>.rejects.jsonl"),
]
ProgressOpt = Annotated[bool, typer.Option(help="Show a progress bar")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]
RunsOpt = Annotated[list[Path], typer.Option("--run", help="Run TSV (repeat to compare)")]
QrelsOpt = Annotated[
    list[Path],
    typer.Option(
        "--qrels",
        help="Judgements: TSV query_id doc_id grade, or a filled pool CSV (repeat: later wins)",
    ),
]

# The eval harness's choices (`recommender.eval.runs.Method` and `Stage`,
# `recommender.eval.significance.Test`), spelled here so that the command line starts without
# importing the harness: mypy checks that the harness takes them, tests/test_cli.py that they
# are all of its choices.
Method = Literal["pipeline", "stored", "dense", "tfidf", "bm25"]
Stage = Literal["ranked", "final"]
Test = Literal["randomization", "t-test"]
TestOpt = Annotated[Test, typer.Option("--test", help="The paired significance test")]


def out_option(help: str) -> Any:
    """`--out/-o`: the file or directory a command writes."""
    return typer.Option("--out", "-o", help=help)


def k_option(help: str, maximum: int | None = None) -> Any:
    """`-k/--k`: how many items."""
    return typer.Option("-k", "--k", min=1, max=maximum, help=help)


def queries_option(default: str) -> Any:
    """`--queries`: a TSV of query ids (a `query_id` column)."""
    return typer.Option(help="Query ids, TSV with a query_id column", show_default=default)


def _option_type(annotation: Any) -> Any:
    """What the command line parses a field as: numbers and choices as such, lists as repeated
    strings, anything else (dates) as a string that the model parses as the API does."""
    if get_origin(annotation) in (Union, UnionType):
        [annotation] = [a for a in get_args(annotation) if a is not NoneType]
    if annotation in (bool, int, float, str) or get_origin(annotation) is Literal:
        return annotation
    return list[str] if get_origin(annotation) is list else str


def _bound(field: FieldInfo, kind: type[annotated_types.Ge | annotated_types.Le]) -> float | None:
    """The field's bound of this kind (`ge` or `le`), if it has one."""
    for m in field.metadata:
        value = getattr(m, "ge" if kind is annotated_types.Ge else "le", None)
        if isinstance(m, kind) and isinstance(value, int | float):
            return value
    return None


def model_options(
    model: type[BaseModel], short: dict[str, str], helps: dict[str, str]
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Declare every field of `model` as an option (`--field-name`, `short[name]` beside it;
    the field's description or `helps[name]` as help; its bounds as the option's range) of the
    decorated command, whose parameter annotated `model` receives the model built from them:
    validated by the model itself, as the API validates its query."""

    def option(name: str) -> inspect.Parameter:
        field = model.model_fields[name]
        names = [*([short[name]] if name in short else []), f"--{name.replace('_', '-')}"]
        info = typer.Option(
            *names,
            help=field.description or helps[name],
            min=_bound(field, annotated_types.Ge),
            max=_bound(field, annotated_types.Le),
        )
        default = None if field.default in (None, PydanticUndefined) else field.default
        kind = _option_type(field.annotation)
        return inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[kind if default is not None else kind | None, info],
            default=default,
        )

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(command, eval_str=True)
        [target] = [p.name for p in signature.parameters.values() if p.annotation is model]
        params: list[inspect.Parameter] = []
        for p in signature.parameters.values():
            if p.name == target:
                params += [option(name) for name in model.model_fields]
            else:
                params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY))

        def run(**kwargs: Any) -> None:
            given = {name: kwargs.pop(name) for name in model.model_fields}
            try:
                built = model(**{k: v for k, v in given.items() if v is not None})
            except ValidationError as exc:
                first = exc.errors()[0]
                message = str(first["msg"]).removeprefix("Value error, ")
                flag = f"'--{str(first['loc'][0]).replace('_', '-')}'" if first["loc"] else None
                raise typer.BadParameter(message, param_hint=flag) from None
            command(**kwargs, **{target: built})

        run.__name__, run.__doc__ = command.__name__, command.__doc__
        run.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params}
        return run

    return decorate
