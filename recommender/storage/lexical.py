"""The lexical index: TF-IDF and BM25 scores of a query against every indexed article.

TF-IDF uses scikit-learn's `TfidfVectorizer` (sublinear tf, l2 rows) so `scores` is a cosine;
BM25 uses `bm25s`. An index is saved as plain files in one directory: `tfidf.npz` (the document
matrix), `lexical.json` (ids, vocabulary, idf, settings) and `bm25/` (bm25s' own npy + json).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import bm25s
import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel
from sklearn.feature_extraction.text import TfidfVectorizer

from recommender.articles import Article
from recommender.text.analyzer import Analyzer, AnalyzerConfig, lexical_text

Method = Literal["tfidf", "bm25"]


class LexicalConfig(BaseModel):
    """Index settings: analyzer, title repetition, TF-IDF document-frequency cut, BM25 params."""

    analyzer: AnalyzerConfig = AnalyzerConfig()
    title_weight: int = 2
    max_df: float = 0.5
    k1: float = 1.2
    b: float = 0.75


class LexicalIndex:
    """TF-IDF and BM25 scores of a query article (or text) against every indexed article."""

    def __init__(
        self,
        ids: list[str],
        config: LexicalConfig,
        vectorizer: TfidfVectorizer,
        matrix: sp.csr_matrix,
        bm25: bm25s.BM25,
    ) -> None:
        self.ids = ids
        self.config = config
        self.analyzer = Analyzer(config.analyzer)
        self.vectorizer = vectorizer
        self.matrix = matrix
        self.bm25 = bm25
        self.position = {doc_id: i for i, doc_id in enumerate(ids)}

    @classmethod
    def build(
        cls, articles: Sequence[Article], config: LexicalConfig | None = None
    ) -> LexicalIndex:
        config = config or LexicalConfig()
        analyzer = Analyzer(config.analyzer)
        terms = [analyzer(lexical_text(a, config.title_weight)) for a in articles]
        vectorizer = TfidfVectorizer(
            analyzer=_identity, sublinear_tf=True, max_df=config.max_df, dtype=np.float32
        )
        try:
            weights = vectorizer.fit_transform(terms)
        except ValueError:
            # a tiny or uniform collection: every term is in more than max_df of the articles
            vectorizer.set_params(max_df=1.0)
            weights = vectorizer.fit_transform(terms)
        matrix = sp.csr_matrix(weights, dtype=np.float32)
        bm25 = bm25s.BM25(k1=config.k1, b=config.b)
        bm25.index(terms, show_progress=False)
        return cls([a.id for a in articles], config, vectorizer, matrix, bm25)

    def __len__(self) -> int:
        return len(self.ids)

    def query_terms(self, query: Article | str) -> list[str]:
        text = query if isinstance(query, str) else lexical_text(query, self.config.title_weight)
        return self.analyzer(text)

    def scores(self, query: Article | str, method: Method = "tfidf") -> np.ndarray:
        """One float32 score per indexed article, in index order (TF-IDF: cosine in [0, 1])."""
        terms = self.query_terms(query)
        if method == "bm25":
            return np.asarray(self.bm25.get_scores(terms), dtype=np.float32)
        vector = self.vectorizer.transform([terms])
        return np.asarray((self.matrix @ vector.T).toarray().ravel(), dtype=np.float32)

    def row_terms(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """The l2-normalized TF-IDF row of an indexed article: (term indices, weights)."""
        start, end = self.matrix.indptr[row], self.matrix.indptr[row + 1]
        return self.matrix.indices[start:end], self.matrix.data[start:end]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        sp.save_npz(directory / "tfidf.npz", self.matrix)
        meta = {
            "ids": self.ids,
            "config": self.config.model_dump(),
            "vocabulary": {t: int(i) for t, i in self.vectorizer.vocabulary_.items()},
            "idf": [float(x) for x in self.vectorizer.idf_],
        }
        (directory / "lexical.json").write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
        self.bm25.save(str(directory / "bm25"), show_progress=False)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        meta: dict[str, Any] = json.loads((directory / "lexical.json").read_text("utf-8"))
        config = LexicalConfig.model_validate(meta["config"])
        vectorizer = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, dtype=np.float32)
        vectorizer.vocabulary_ = meta["vocabulary"]
        vectorizer.idf_ = np.asarray(meta["idf"], dtype=np.float32)
        matrix = sp.csr_matrix(sp.load_npz(directory / "tfidf.npz"), dtype=np.float32)
        bm25 = bm25s.BM25.load(str(directory / "bm25"), show_progress=False)
        return cls(meta["ids"], config, vectorizer, matrix, bm25)


def _identity(terms: list[str]) -> list[str]:
    return terms
