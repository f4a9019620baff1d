#!/usr/bin/env bash
# Set up, build the model, index the bundled sample corpus and serve the API on localhost.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
. .venv/bin/activate
recommender models build
recommender index build --input "$(recommender sample)"
PORT=${PORT:-8000}
# a key for this session's writes unless one is configured (writes are refused without a key)
export RECOMMENDER_API_KEYS=${RECOMMENDER_API_KEYS:-$(python3 -c 'import secrets; print(secrets.token_urlsafe(16))')}
KEY=${RECOMMENDER_API_KEYS%%,*}
cat <<MSG

Ready. In another terminal try:
  curl -s 'http://127.0.0.1:${PORT}/articles/a1001/related?k=5' | python3 -m json.tool --no-ensure-ascii
  curl -s -X POST http://127.0.0.1:${PORT}/related -H 'content-type: application/json' \\
       -d '{"title": "Наводнение в Царево", "body": "Проливни дъждове наводниха къщи по Южното Черноморие.", "k": 3}'
  # publish an article (its list and its story's older lists are updated before this returns):
  curl -s -X PUT http://127.0.0.1:${PORT}/articles/n1 -H 'Authorization: Bearer ${KEY}' \\
       -H 'content-type: application/json' \\
       -d '{"title": "Наводнение в Царево", "body": "Проливни дъждове наводниха къщи по Южното Черноморие.", "published": "2026-11-20"}'
  curl -s 'http://127.0.0.1:${PORT}/articles/n1/related?k=3' | python3 -m json.tool --no-ensure-ascii
  open http://127.0.0.1:${PORT}/demo for the demo news site with the related-stories box,
  and http://127.0.0.1:${PORT}/docs for the API documentation.

MSG
exec recommender serve --port "$PORT"
