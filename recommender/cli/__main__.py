"""`python -m recommender.cli`, as the `recommender` console script."""

from recommender.cli import app

app(prog_name="recommender")
