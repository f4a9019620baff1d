"""Request bodies and keys: the Content-Types each body may have (415 otherwise), the bulk body
read by hand (a JSON array or NDJSON; 400 when it is not JSON, like every other body), and the
write key (`Authorization: Bearer KEY`, FastAPI's `HTTPBearer`)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import orjson
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from recommender.api.state import State, get_state

JSON = "application/json"
NDJSON = "application/x-ndjson"

bearer = HTTPBearer(
    auto_error=False,  # a missing key is answered by require_writer, in the one error shape
    scheme_name="WriteKey",
    description="A key of RECOMMENDER_API_KEYS, as `Authorization: Bearer KEY`",
)


def require_writer(
    state: Annotated[State, Depends(get_state)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Writes need `Authorization: Bearer KEY` with a key of `RECOMMENDER_API_KEYS`."""
    keys = state.settings.write_keys()
    if not keys:
        raise HTTPException(
            status_code=403,
            detail="writes are disabled: set RECOMMENDER_API_KEYS (comma-separated keys) and "
            "send 'Authorization: Bearer KEY'",
        )
    given = credentials.credentials.strip().encode() if credentials is not None else b""
    if not any(hmac.compare_digest(given, k.encode()) for k in keys):
        raise HTTPException(
            status_code=401,
            detail="a write needs 'Authorization: Bearer KEY' with a valid key",
            headers={"WWW-Authenticate": "Bearer"},
        )


def json_content(request: Request) -> None:
    """Dependency: the body is declared JSON (`application/json` or `application/*+json`);
    415 for another Content-Type or none (FastAPI would not read it as JSON)."""
    content_type_in(request, (JSON,))


def content_type_in(request: Request, allowed: tuple[str, ...]) -> str:
    """The body's media type, when it is one of `allowed`; 415 otherwise."""
    mime = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if mime in allowed or (
        JSON in allowed and mime.startswith("application/") and mime.endswith("+json")
    ):
        return mime
    given = f"'{mime}' is not accepted here" if mime else "missing"
    raise HTTPException(
        status_code=415, detail=f"Content-Type: {given}, send {' or '.join(allowed)}"
    )


def _parse_json(data: bytes, where: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(
            status_code=400,
            detail=f"body: {where}not valid JSON ({exc.msg} at column {exc.colno})",
        ) from None


async def json_items(request: Request, limit: int) -> list[Any]:
    """A bulk body: a JSON array, or NDJSON when its Content-Type says so (one object a line;
    an error names its line). Its size is limited before it is read (`serving.limits`)."""
    mime = content_type_in(request, (JSON, NDJSON))
    raw = await request.body()
    if not raw.strip():
        raise HTTPException(
            status_code=422, detail="body: required, a JSON array or NDJSON of articles"
        )
    if mime == NDJSON:
        items = [
            _parse_json(line, f"line {n}: ")
            for n, line in enumerate(raw.splitlines(), start=1)
            if line.strip()
        ]
    else:
        items = _parse_json(raw, "")
    if not isinstance(items, list):
        raise HTTPException(
            status_code=422,
            detail=f"body: expected a JSON array of articles (NDJSON is sent as {NDJSON})",
        )
    if len(items) > limit:
        raise HTTPException(
            status_code=413, detail=f"body: {len(items)} articles, at most {limit} per request"
        )
    return items
