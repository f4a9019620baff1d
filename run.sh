#!/usr/bin/env bash
# Set up, build the model, index the bundled sample corpus and serve the API on localhost.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
. .venv/bin/activate
recommender models build
recommender index build --input "$(recommender sample)"
PORT=${PORT:-8000}
cat <<MSG

Ready. In another terminal try:
  curl -s 'http://127.0.0.1:${PORT}/articles/a1001/related?k=5' | python3 -m json.tool --no-ensure-ascii
  curl -s -X POST http://127.0.0.1:${PORT}/related -H 'content-type: application/json' \\
       -d '{"title": "Наводнение в Царево", "body": "Проливни дъждове наводниха къщи по Южното Черноморие.", "k": 3}'
  open http://127.0.0.1:${PORT}/demo for the demo news site with the related-stories box,
  and http://127.0.0.1:${PORT}/docs for the API documentation.

MSG
exec recommender serve --port "$PORT"
