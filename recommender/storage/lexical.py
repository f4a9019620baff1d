"""The lexical index: TF-IDF cosine of a query against every indexed article, kept up to date.

It is derived state: rebuilt from the term counts the store keeps for every article
(`terms_of`), then changed in place as articles are added and removed. Document frequencies are
maintained as articles come and go, so a name that appears for the first time in a breaking
story weighs as a rare term at once; there is no frozen vocabulary to refit.

The weighting is scikit-learn's `TfidfVectorizer(sublinear_tf=True, max_df=0.5)`, computed
live: tf = 1 + ln(count), idf = ln((1 + n) / (1 + df)) + 1, terms in more than `max_df` of the
articles weigh nothing, rows are l2-normalized, so a score is a cosine in [0, 1]
(`tests/test_lexical.py` checks the scores against scikit-learn on the sample corpus).

Rows live by slot (the article's position in the in-memory arrays, also its FAISS id): a base
CSR matrix plus a small CSR of rows added since, merged when it grows; removed slots are
masked. Not thread-safe by itself: the mirror that owns it serializes changes and searches.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel

from recommender.articles import Article
from recommender.text.analyzer import Analyzer, AnalyzerConfig, lexical_text

MERGE_ROWS = 1024
Terms = dict[str, int]


class LexicalConfig(BaseModel):
    """Index settings: analyzer, title repetition, TF-IDF document-frequency cut, BM25 params."""

    analyzer: AnalyzerConfig = AnalyzerConfig()
    title_weight: int = 2
    max_df: float = 0.5
    k1: float = 1.2
    b: float = 0.75


def terms_of(article: Article, analyzer: Analyzer, config: LexicalConfig) -> Terms:
    """Term counts of an article as it is indexed (title repeated `title_weight` times)."""
    return dict(Counter(analyzer(lexical_text(article, config.title_weight))))


class LexicalIndex:
    """TF-IDF over articles by slot, with live document frequencies."""

    def __init__(self, config: LexicalConfig | None = None) -> None:
        self.config = config or LexicalConfig()
        self.analyzer = Analyzer(self.config.analyzer)
        self.vocabulary: dict[str, int] = {}
        self.docs = 0
        self.size = 0
        """Slots used so far (live or removed); score arrays have this length."""
        self._df = np.zeros(0, dtype=np.int64)
        self._alive = np.zeros(0, dtype=bool)
        self._base = sp.csr_matrix((0, 0), dtype=np.float32)
        self._pending: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._cols: dict[int, np.ndarray] = {}
        self._idf: np.ndarray | None = None
        self._norms: tuple[np.ndarray, np.ndarray] | None = None
        self._extra: tuple[np.ndarray, sp.csr_matrix] | None = None

    def __len__(self) -> int:
        return self.docs

    def __contains__(self, slot: object) -> bool:
        return slot in self._cols

    def _columns(self, terms: Terms, grow: bool) -> tuple[np.ndarray, np.ndarray]:
        """Sorted column indices and sublinear tf of the known (with `grow`: all) terms."""
        cols, tfs = [], []
        for term, count in terms.items():
            col = self.vocabulary.get(term)
            if col is None:
                if not grow:
                    continue
                col = len(self.vocabulary)
                self.vocabulary[term] = col
            cols.append(col)
            tfs.append(1.0 + np.log(count))
        order = np.argsort(cols)
        return np.asarray(cols, np.int32)[order], np.asarray(tfs, np.float32)[order]

    def add(self, slot: int, terms: Terms) -> None:
        """Index an article's term counts at `slot`; slots only grow (never reused)."""
        if slot < self._base.shape[0] or slot in self._pending:
            raise ValueError(f"slot {slot} was used before in this lexical index")
        cols, tfs = self._columns(terms, grow=True)
        if len(self._df) < len(self.vocabulary):
            grow = max(len(self.vocabulary), 2 * len(self._df)) - len(self._df)
            self._df = np.concatenate([self._df, np.zeros(grow, np.int64)])
        if len(self._alive) <= slot:
            grow = max(slot + 1, 2 * len(self._alive)) - len(self._alive)
            self._alive = np.concatenate([self._alive, np.zeros(grow, dtype=bool)])
        self._df[cols] += 1
        self.docs += 1
        self.size = max(self.size, slot + 1)
        self._alive[slot] = True
        self._cols[slot] = cols
        self._pending[slot] = (cols, tfs)
        self._changed()
        if len(self._pending) >= MERGE_ROWS:
            self.merge()

    def remove(self, slot: int) -> None:
        """Forget the article at `slot`; its terms stop counting in document frequencies."""
        cols = self._cols.pop(slot, None)
        if cols is None:
            return
        self._df[cols] -= 1
        self.docs -= 1
        self._alive[slot] = False
        self._pending.pop(slot, None)
        self._changed()

    def _changed(self) -> None:
        self._idf = None
        self._norms = None
        self._extra = None

    def merge(self) -> None:
        """Fold the rows added since the last merge into the base matrix."""
        if not self._pending:
            return
        width = len(self.vocabulary)
        start = self._base.shape[0]
        height = max(self._pending) + 1
        lengths = np.zeros(height - start, dtype=np.int64)
        for slot, (cols, _) in self._pending.items():
            lengths[slot - start] = len(cols)
        order = sorted(self._pending)
        block = sp.csr_matrix(
            (
                np.concatenate([self._pending[s][1] for s in order]),
                np.concatenate([self._pending[s][0] for s in order]),
                np.concatenate([[0], np.cumsum(lengths)]),
            ),
            shape=(height - start, width),
        )
        base = self._base
        base = sp.csr_matrix((base.data, base.indices, base.indptr), shape=(start, width))
        self._base = sp.csr_matrix(sp.vstack([base, block], format="csr"), dtype=np.float32)
        self._pending = {}
        self._changed()

    def _extra_rows(self) -> tuple[np.ndarray, sp.csr_matrix]:
        """The rows added since the last merge: (slots, CSR matrix)."""
        if self._extra is None:
            slots = np.fromiter(sorted(self._pending), dtype=np.int64)
            width = len(self.vocabulary)
            if len(slots):
                rows = [self._pending[int(s)] for s in slots]
                matrix = sp.csr_matrix(
                    (
                        np.concatenate([r[1] for r in rows]),
                        np.concatenate([r[0] for r in rows]),
                        np.concatenate([[0], np.cumsum([len(r[0]) for r in rows])]),
                    ),
                    shape=(len(slots), width),
                )
            else:
                matrix = sp.csr_matrix((0, width), dtype=np.float32)
            self._extra = (slots, matrix)
        return self._extra

    def _base_view(self) -> sp.csr_matrix:
        base = self._base
        return sp.csr_matrix(
            (base.data, base.indices, base.indptr), shape=(base.shape[0], len(self.vocabulary))
        )

    def idf(self) -> np.ndarray:
        """Current idf per vocabulary column; 0 for terms above `max_df` or in no article."""
        if self._idf is None:
            n = self.docs
            df = self._df[: len(self.vocabulary)]
            idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
            cut = df > self.config.max_df * n
            if n and cut[df > 0].all():
                cut[:] = False  # a tiny or uniform collection: keep every term
            idf[cut | (df == 0)] = 0.0
            self._idf = idf.astype(np.float32)
        return self._idf

    def _doc_norms(self) -> tuple[np.ndarray, np.ndarray]:
        """TF-IDF row norms of the base rows and of the rows added since."""
        if self._norms is None:
            idf2 = self.idf().astype(np.float64) ** 2
            base = self._base_view()
            _, extra = self._extra_rows()
            self._norms = (
                np.sqrt(np.asarray(base.multiply(base) @ idf2)).astype(np.float32),
                np.sqrt(np.asarray(extra.multiply(extra) @ idf2)).astype(np.float32),
            )
        return self._norms

    def query_terms(self, query: Article | str) -> Terms:
        """Term counts of a text or an article, as the index counts them."""
        if isinstance(query, str):
            return dict(Counter(self.analyzer(query)))
        return terms_of(query, self.analyzer, self.config)

    def scores(self, terms: Terms) -> np.ndarray:
        """TF-IDF cosine of `terms` against every slot (0 for removed slots)."""
        return self._scores(*self._columns(terms, grow=False))

    def scores_of_slot(self, slot: int) -> np.ndarray:
        """TF-IDF cosine of an indexed article against every slot."""
        return self._scores(*self._row(slot))

    def _scores(self, cols: np.ndarray, tfs: np.ndarray) -> np.ndarray:
        out = np.zeros(self.size, dtype=np.float32)
        idf = self.idf()
        weights = tfs * idf[cols]
        norm = float(np.linalg.norm(weights))
        if norm == 0.0:
            return out
        query = np.zeros(len(self.vocabulary), dtype=np.float32)
        query[cols] = weights * idf[cols] / norm
        base_norms, extra_norms = self._doc_norms()
        base = self._base_view()
        dots = np.asarray(base @ query, dtype=np.float32)
        np.divide(dots, base_norms, out=out[: len(dots)], where=base_norms > 0)
        slots, extra = self._extra_rows()
        if len(slots):
            extra_dots = np.asarray(extra @ query, dtype=np.float32)
            part = np.zeros_like(extra_dots)
            np.divide(extra_dots, extra_norms, out=part, where=extra_norms > 0)
            out[slots] = part
        out[~self._alive[: self.size]] = 0.0
        return out

    def _row(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        if slot in self._pending:
            return self._pending[slot]
        base = self._base
        start, end = base.indptr[slot], base.indptr[slot + 1]
        return base.indices[start:end], base.data[start:end]

    def row_terms(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        """The l2-normalized TF-IDF row of an indexed article: (term indices, weights)."""
        cols, tfs = self._row(slot)
        weights = tfs * self.idf()[cols]
        norm = float(np.linalg.norm(weights))
        return cols, (weights / norm if norm else weights).astype(np.float32)
