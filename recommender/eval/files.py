"""Run, judgement and query files of the eval harness.

A run is tab-separated with a header: `query_id  doc_id  rank  score  reason  parts`, one line per
related story, `parts` the score's signals as a JSON object (`{"dense": 0.81, ...}`). The last two
columns are optional, so 4-column runs of earlier versions (and other tools) read as before.

Judgements (qrels) are `query_id  doc_id  grade` TSV files, or a filled pool CSV
(`recommender.eval.pooling`: the same three columns among others, rows without a grade skipped).
Grades: 3 = the same story, 2 = the same event, 1 = related (same collection), 0 = not related.
An optional fourth column, `happening`, names the specific happening a grade-2 item reports
(`story_rubric.md`: two reports of one happening share a label; grade 3 is `A`, the query's own
happening; `-` or empty: none), so the box's metrics count copies of one happening once. A
label `@DOC_ID` is the label the same query's judged article DOC_ID holds in the files read
before: a supplement names an earlier happening by one of its reports, not by its label.
Several files merge in order, a later file's row replacing an earlier one's for the same pair
(grade and happening), so a judged pool is a supplement to the qrels it was made from.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Qrels = dict[str, dict[str, int]]
Happenings = dict[str, dict[str, str]]
Record = dict[str, Any]
GRADES = range(4)
RUN_COLUMNS = ["query_id", "doc_id", "rank", "score", "reason", "parts"]


@dataclass(frozen=True)
class RunItem:
    """One related story of a run: the article, its score and (new runs) why it is there."""

    doc_id: str
    score: float
    reason: str = ""
    parts: Mapping[str, float] = field(default_factory=dict)


Run = dict[str, list[RunItem]]


def _rows(path: Path, delimiter: str = "\t") -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a headed file; the header's first line is line 1."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        start = 2
        for row in reader:
            line, start = start, reader.line_num + 1
            yield line, row


def _require(path: Path, header: Sequence[str] | None, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in (header or [])]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)} in the header")


def _header(path: Path, delimiter: str = "\t") -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return next(csv.reader(fh, delimiter=delimiter), [])


def _ids_present(where: str, row: Mapping[str, str | None]) -> None:
    for column in ("query_id", "doc_id"):
        if not row.get(column):
            raise ValueError(f"{where}: field '{column}' is empty or missing")


def load_run(path: Path | str) -> Run:
    """A run file's related stories per query, best first (ordered by `rank`)."""
    path = Path(path)
    _require(path, _header(path), ["query_id", "doc_id", "rank"])
    ranked: dict[str, list[tuple[int, RunItem]]] = {}
    for line, row in _rows(path):
        where = f"{path}:{line}"
        _ids_present(where, row)
        try:
            rank = int(row["rank"])
            score = float(row.get("score") or "nan")
        except ValueError:
            raise ValueError(f"{where}: field 'rank' or 'score' is not a number") from None
        parts_text = row.get("parts") or "{}"
        try:
            parts = {str(k): float(v) for k, v in json.loads(parts_text).items()}
        except (ValueError, AttributeError, TypeError):
            raise ValueError(f"{where}: field 'parts' is not a JSON object of numbers") from None
        item = RunItem(row["doc_id"], score, row.get("reason") or "", parts)
        ranked.setdefault(row["query_id"], []).append((rank, item))
    return {
        q: [item for _, item in sorted(items, key=lambda p: p[0])] for q, items in ranked.items()
    }


def write_run(path: Path, run: Mapping[str, Sequence[RunItem]]) -> None:
    """Write a run, best first, with reasons and score parts."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(RUN_COLUMNS)
        for query_id, items in run.items():
            for rank, it in enumerate(items, start=1):
                parts = json.dumps({k: round(v, 6) for k, v in it.parts.items()})
                writer.writerow([query_id, it.doc_id, rank, f"{it.score:.6f}", it.reason, parts])


def doc_ids(run: Mapping[str, Sequence[RunItem]]) -> dict[str, list[str]]:
    """The ranked doc ids per query, which is all the metrics read."""
    return {q: [it.doc_id for it in items] for q, items in run.items()}


class Judgements(dict[str, dict[str, int]]):
    """Qrels (grades per query and article) with the `happening` labels the files held: per
    query, the label of each labelled article (grade 2 or 3 only; `-` and empty are none), and
    `ruled`, the queries judged in a file with a `happening` column (the box's metrics are
    computed for those)."""

    def __init__(self) -> None:
        super().__init__()
        self.happenings: Happenings = {}
        self.ruled: set[str] = set()


NO_HAPPENING = ("", "-")


def happenings_of(qrels: Qrels) -> tuple[Happenings, set[str]]:
    """The happening labels of loaded judgements and the queries they rule (none for plain
    dicts)."""
    if isinstance(qrels, Judgements):
        return qrels.happenings, qrels.ruled
    return {}, set()


def _earlier_label(where: str, qrels: Judgements, query_id: str, doc_id: str) -> str:
    label = qrels.happenings.get(query_id, {}).get(doc_id)
    if label is None:
        raise ValueError(
            f"{where}: field 'happening' refers to @{doc_id}, which holds no happening label "
            f"for query {query_id} in the files read before"
        )
    return label


def _read_qrels_file(path: Path, qrels: Judgements) -> None:
    delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    header = _header(path, delimiter)
    _require(path, header, ["query_id", "doc_id", "grade"])
    labelled = "happening" in header
    for line, row in _rows(path, delimiter):
        _ids_present(f"{path}:{line}", row)
        text = (row["grade"] or "").strip()
        if not text:
            continue
        try:
            grade = int(text)
        except ValueError:
            grade = -1
        if grade not in GRADES:
            raise ValueError(f"{path}:{line}: field 'grade' must be 0, 1, 2 or 3, not '{text}'")
        query_id, doc_id = row["query_id"], row["doc_id"]
        qrels.setdefault(query_id, {})[doc_id] = grade
        label = (row.get("happening") or "").strip() if labelled else ""
        if label.startswith("@"):
            label = _earlier_label(f"{path}:{line}", qrels, query_id, label[1:])
        if grade >= 2 and label not in NO_HAPPENING:
            qrels.happenings.setdefault(query_id, {})[doc_id] = label
        else:
            qrels.happenings.get(query_id, {}).pop(doc_id, None)
        if labelled:
            qrels.ruled.add(query_id)


def load_qrels(*paths: Path | str) -> Judgements:
    """Judgements of one or more files merged in order: a later row for a pair wins."""
    qrels = Judgements()
    for path in paths:
        _read_qrels_file(Path(path), qrels)
    return qrels


def read_queries(path: Path | str) -> list[str]:
    path = Path(path)
    _require(path, _header(path), ["query_id"])
    return [row["query_id"] for _, row in _rows(path)]
