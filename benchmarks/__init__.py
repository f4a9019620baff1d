"""The benchmark suite: latency, recall, HTTP load, encoding, reindexing and relevance on real data.

Run it with `python -m benchmarks run`; see benchmarks/README.md.
"""
