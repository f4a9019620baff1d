"""The HTTP API the website calls: related stories to read, articles to publish and unpublish.

The website's read, `GET /articles/{id}/related` with default parameters, is a lookup of the
list stored when the article (or a neighbour) was written: nothing is encoded or ranked. Other
parameters are computed per request from the in-memory mirror, and their answers are kept in a
cache bounded in bytes. Writes (`PUT`, `DELETE`, `POST /articles`) need a key.

`create_app` (`app`) assembles the routers: `reads`, `writes`, `ops` (health, readiness,
metrics) and `box` (the website's HTML); `models` holds the bodies, `state` what the routes
share (the engine, the answer cache, the one read path of a list), `bodies` the Content-Types,
the bulk body and the write key.
"""

from recommender.api.app import create_app
from recommender.api.state import stored_answer

__all__ = ["create_app", "stored_answer"]
