"""The eval bench: runs, judgements, metrics, significance, pooled judging and the report.

For a notebook, the operations return plain records that `pandas.DataFrame(...)` takes:
`load_qrels`, `load_run`, `score`, `per_query`, `compare`, `pool`.
"""

from recommender.eval.files import load_qrels, load_run
from recommender.eval.pooling import pool
from recommender.eval.scoring import compare, per_query, score

__all__ = ["compare", "load_qrels", "load_run", "per_query", "pool", "score"]
